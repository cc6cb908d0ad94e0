import { describe, expect, it } from "vitest";
import { HangarError, isHangarError } from "../../src/core/errors.js";

describe("HangarError", () => {
  it("carries a stable code, structured data and a cause", () => {
    const cause = new Error("boom");
    const err = new HangarError("HANGAR_POLICY_INVALID", "policy is invalid", { cause, data: { file: "p.yaml" } });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("HangarError");
    expect(err.code).toBe("HANGAR_POLICY_INVALID");
    expect(err.message).toBe("policy is invalid");
    expect(err.data).toEqual({ file: "p.yaml" });
    expect(err.cause).toBe(cause);
  });

  it("defaults to empty data and no cause", () => {
    const err = new HangarError("HANGAR_CLOSED", "closed");
    expect(err.data).toEqual({});
    expect("cause" in err).toBe(false);
  });
});

describe("isHangarError", () => {
  const err = new HangarError("HANGAR_DNS_MALFORMED", "bad packet");

  it("recognises a HangarError, optionally by code", () => {
    expect(isHangarError(err)).toBe(true);
    expect(isHangarError(err, "HANGAR_DNS_MALFORMED")).toBe(true);
    expect(isHangarError(err, "HANGAR_CLOSED")).toBe(false);
  });

  it("rejects anything else, including look-alikes", () => {
    expect(isHangarError(new Error("x"))).toBe(false);
    expect(isHangarError({ name: "HangarError", code: "HANGAR_CLOSED", message: "x" })).toBe(false);
    expect(isHangarError(undefined)).toBe(false);
    expect(isHangarError("HANGAR_CLOSED")).toBe(false);
  });
});
