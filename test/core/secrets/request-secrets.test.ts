import { describe, expect, it } from "vitest";
import { decide, permits, type DecisionContext } from "../../../src/core/decision.js";
import type { Mode } from "../../../src/core/policy/policy-schema.js";
import { checkRequestSecrets, describeLeak, nameLeaks } from "../../../src/core/secrets/request-secrets.js";
import { compileSecretWatch, newSentinel, SENTINEL_PREFIX, type SecretMaterial } from "../../../src/core/secrets/secret-watch.js";
import { testPolicy } from "../../support/sidecar-context.js";

// Made-up values: nothing here is a real credential.
const TOKEN = "pm-7c1f-secret-server-token-0042";
const SENTINEL = `${SENTINEL_PREFIX}abcdefghijklmnopqrstuvwxyz`;
const LEGACY = "legacy-9f8e7d6c5b4a-value";
const GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";

const SECRETS: SecretMaterial[] = [
  { name: "POSTMARK_TOKEN", value: TOKEN, sentinel: SENTINEL, inject: { host: "api.postmarkapp.com", header: "X-Postmark-Server-Token" } },
  { name: "LEGACY_TOKEN", value: LEGACY },
  { name: "GITHUB_TOKEN", value: GH, host: "api.github.com" },
];
const watch = compileSecretWatch(SECRETS);

const request = (over: Partial<Parameters<typeof checkRequestSecrets>[1]> = {}): Parameters<typeof checkRequestSecrets>[1] => ({
  host: "api.postmarkapp.com",
  inspected: true,
  rawHeaders: ["Host", "api.postmarkapp.com", "Accept", "application/json"],
  target: "/email",
  ...over,
});

describe("sentinels", () => {
  it("are hangar-sentinel- and 26 base32 letters from 16 random bytes: one DNS label", () => {
    const s = newSentinel(() => new Uint8Array(16).fill(0xff));
    expect(s).toBe(`${SENTINEL_PREFIX}${"7".repeat(25)}4`);
    const random = newSentinel((n) => crypto.getRandomValues(new Uint8Array(n)));
    expect(random).toMatch(/^hangar-sentinel-[a-z2-7]{26}$/);
    expect(random.length).toBeLessThanOrEqual(63);
  });
});

describe("checkRequestSecrets: substitution", () => {
  it("writes the value into the declared header of an inspected request to the declared host, and nowhere else", () => {
    const raw = ["Host", "api.postmarkapp.com", "x-postmark-server-token", SENTINEL, "Accept", "*/*"];
    const r = checkRequestSecrets(watch, request({ rawHeaders: raw }));
    expect(r.leaks).toEqual([]);
    expect(r.injected).toEqual(["POSTMARK_TOKEN"]);
    expect(r.headers).toEqual(["Host", "api.postmarkapp.com", "x-postmark-server-token", TOKEN, "Accept", "*/*"]);
    expect(raw[3]).toBe(SENTINEL); // the input is left alone
  });

  it("applies the format, and drops whatever the server put beside the sentinel", () => {
    const w = compileSecretWatch([{ name: "GH", value: "real-value-123456", sentinel: SENTINEL, inject: { host: "api.github.com", header: "Authorization", format: "Bearer {}" } }]);
    for (const sent of [SENTINEL, `Bearer ${SENTINEL}`, `Bearer ${SENTINEL}, extra`]) {
      const r = checkRequestSecrets(w, request({ host: "api.github.com", rawHeaders: ["Authorization", sent] }));
      expect(r.headers).toEqual(["Authorization", "Bearer real-value-123456"]);
    }
  });

  it("a value with $& in it is written literally", () => {
    const w = compileSecretWatch([{ name: "T", value: "ab$&cd$1efgh", sentinel: SENTINEL, inject: { host: "h.example", header: "X-T" } }]);
    expect(checkRequestSecrets(w, request({ host: "h.example", rawHeaders: ["X-T", SENTINEL] })).headers).toEqual(["X-T", "ab$&cd$1efgh"]);
  });

  it("the sentinel in the declared header is a hard leak when the request is not inspected (plaintext) or goes to another host", () => {
    const raw = ["X-Postmark-Server-Token", SENTINEL];
    for (const over of [{ inspected: false }, { host: "api.other.com" }]) {
      const r = checkRequestSecrets(watch, request({ rawHeaders: raw, ...over }));
      expect(r.headers).toBeUndefined();
      expect(r.leaks).toEqual([{ name: "POSTMARK_TOKEN", kind: "sentinel", where: "header", encoding: "raw", hard: true }]);
    }
  });

  it("the sentinel in another header, the URL or the body is a hard leak, in any encoding", () => {
    const b64 = Buffer.from(`{"t":"${SENTINEL}"}`).toString("base64");
    const cases: [Partial<Parameters<typeof checkRequestSecrets>[1]>, string][] = [
      [{ rawHeaders: ["X-Other", SENTINEL] }, "POSTMARK_TOKEN sentinel in header"],
      [{ target: `/email?t=${SENTINEL}` }, "POSTMARK_TOKEN sentinel in url"],
      [{ target: `/email?t=${encodeURIComponent(b64)}` }, "POSTMARK_TOKEN sentinel in url (base64)"],
      [{ body: Buffer.from(`{"Bcc":"${SENTINEL}"}`) }, "POSTMARK_TOKEN sentinel in body"],
      [{ body: Buffer.from(b64) }, "POSTMARK_TOKEN sentinel in body (base64)"],
      [{ body: Buffer.from(Buffer.from(SENTINEL).toString("hex")) }, "POSTMARK_TOKEN sentinel in body (hex)"],
      [{ body: Buffer.from([...SENTINEL].reverse().join("")) }, "POSTMARK_TOKEN sentinel in body (reversed)"],
    ];
    for (const [over, described] of cases) {
      const r = checkRequestSecrets(watch, request(over));
      expect(r.leaks.map(describeLeak), described).toContain(described);
      expect(r.leaks.every((l) => l.hard)).toBe(true);
    }
  });

  it("an injected secret's real value is a hard leak anywhere (the server never held it)", () => {
    const r = checkRequestSecrets(watch, request({ body: Buffer.from(`x=${TOKEN}`) }));
    expect(r.leaks).toEqual([{ name: "POSTMARK_TOKEN", kind: "value", where: "body", encoding: "raw", hard: true }]);
  });
});

describe("checkRequestSecrets: watched values, whatever their form", () => {
  const forms: [string, string][] = [
    ["raw", LEGACY],
    ["base64", Buffer.from(LEGACY).toString("base64")],
    ["base64 mid-run", Buffer.from(`prefix:${LEGACY}:suffix`).toString("base64")],
    ["base64 offset 2", Buffer.from(`ab${LEGACY}`).toString("base64")],
    ["base64url", Buffer.from(`?>${LEGACY}?>`).toString("base64url")],
    ["hex", Buffer.from(LEGACY).toString("hex")],
    ["HEX", Buffer.from(LEGACY).toString("hex").toUpperCase()],
    ["url", encodeURIComponent(`a b/${LEGACY}`)],
    ["reversed", [...LEGACY].reverse().join("")],
  ];
  it.each(forms)("finds the value %s in a body, a header and a URL", (_, text) => {
    for (const over of [{ body: Buffer.from(`{"note":"${text}"}`) }, { rawHeaders: ["X-Note", text] }, { target: `/x?q=${text}` }]) {
      const r = checkRequestSecrets(watch, request(over));
      expect(r.leaks.map((l) => [l.name, l.kind, l.hard])).toContainEqual(["LEGACY_TOKEN", "value", false]);
    }
  });

  it("a plain secret's value on its own host is no leak; on any other host it is", () => {
    const own = checkRequestSecrets(watch, request({ host: "api.github.com", rawHeaders: ["Authorization", `token ${GH}`] }));
    expect(own.leaks).toEqual([]);
    const other = checkRequestSecrets(watch, request({ host: "api.postmarkapp.com", rawHeaders: ["Authorization", `token ${GH}`] }));
    expect(other.leaks.map(describeLeak)).toEqual(["GITHUB_TOKEN value in header"]);
  });

  it("ordinary requests carry no finding", () => {
    const r = checkRequestSecrets(watch, request({ body: Buffer.from('{"To":"a@example.com","Subject":"hi","id":"0b5c7a1e-8f7e-4c1a-9b7e-5a1c2d3e4f50"}'), credentials: true }));
    expect(r).toEqual({ leaks: [], injected: [], credentials: [] });
  });

  it("values shorter than 8 characters are not watched", () => {
    expect(compileSecretWatch([{ name: "S", value: "short" }]).needles).toEqual([]);
  });
});

describe("nameLeaks: DNS names, SNI, Host, CONNECT authorities", () => {
  it("finds a sentinel as a label, a value split over labels, hex and reversed, case-insensitively", () => {
    expect(nameLeaks(watch, `${SENTINEL}.mail.example.com`).map(describeLeak)).toEqual(["POSTMARK_TOKEN sentinel in name"]);
    expect(nameLeaks(watch, "LEGACY-9F8E7D.6c5b4a-value.x.example.com").map(describeLeak)).toEqual(["LEGACY_TOKEN value in name"]);
    expect(nameLeaks(watch, `${Buffer.from(LEGACY).toString("hex")}.x.example.com`).map(describeLeak)).toEqual(["LEGACY_TOKEN value in name (hex)"]);
    expect(nameLeaks(watch, "api.postmarkapp.com")).toEqual([]);
  });
});

describe("checkRequestSecrets: credential shapes (the gateway's detectors)", () => {
  // Built at run time so no scanner flags this file; each matches its issuer's documented shape.
  const shapes: [string, string][] = [
    ["aws-access-key", `{"k":"AKIA${"IOSFODNN7EXAMPLE"}"}`],
    ["github-token", `token=ghp_${"a".repeat(36)}`],
    ["slack-token", `xoxb-${"1234567890"}-abcdefghij`],
    ["stripe-key", `sk_live_${"a1B2".repeat(6)}`],
    ["private-key", `-----BEGIN RSA ${"PRIVATE"} KEY-----\nMII...`],
    ["jwt", `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString("base64url")}.${Buffer.from('{"sub":"1234567890"}').toString("base64url")}.abcdefghijklmnopqrstuv`],
  ];
  it.each(shapes)("%s in a body is found", (detector, body) => {
    const r = checkRequestSecrets(watch, request({ body: Buffer.from(body), credentials: true }));
    expect(r.credentials).toEqual([detector]);
  });

  it("is not looked for unless asked (uninspected traffic), and a host declared for the shape is exempt", () => {
    expect(checkRequestSecrets(watch, request({ body: Buffer.from(shapes[1]![1]) })).credentials).toEqual([]);
    expect(checkRequestSecrets(watch, request({ host: "api.github.com", body: Buffer.from(shapes[1]![1]), credentials: true })).credentials).toEqual([]);
    expect(checkRequestSecrets(watch, request({ host: "api.github.com", body: Buffer.from(shapes[0]![1]), credentials: true })).credentials).toEqual(["aws-access-key"]);
  });
});

describe("decide() with secrets", () => {
  const policy = testPolicy({
    name: "mail",
    egress: { allow: [{ host: "api.postmarkapp.com", inspect: true }, { host: "*.example.com" }] },
  });
  const ctx = (mode: Mode): DecisionContext => ({ policy, mode, secrets: watch });

  it.each(["enforcing", "observing"] as const)("a sentinel leak is blocked in %s mode, naming the secret and never the value", (mode) => {
    const leaks = checkRequestSecrets(watch, request({ body: Buffer.from(SENTINEL) })).leaks;
    const v = decide(ctx(mode), { stage: "connect", protocol: "http", name: "api.postmarkapp.com", port: 443, secretLeaks: leaks });
    expect(v).toMatchObject({ verdict: "block", reasons: ["secret-leak"], leaks: ["POSTMARK_TOKEN sentinel in body"] });
    expect(JSON.stringify(v)).not.toContain(SENTINEL);
  });

  it("a watched value is blocked in enforcing and would-block in observing", () => {
    const leaks = checkRequestSecrets(watch, request({ rawHeaders: ["X", LEGACY] })).leaks;
    const attempt = { stage: "connect", protocol: "http", name: "api.postmarkapp.com", port: 443, secretLeaks: leaks } as const;
    expect(decide(ctx("enforcing"), attempt).verdict).toBe("block");
    expect(decide(ctx("observing"), attempt)).toMatchObject({ verdict: "would-block", reasons: ["secret-leak"] });
  });

  it.each(["enforcing", "observing"] as const)("a DNS name, SNI or CONNECT authority carrying a sentinel is blocked in %s mode", (mode) => {
    for (const attempt of [
      { stage: "dns", protocol: "dns", name: `${SENTINEL}.example.com`, recordType: "A" },
      { stage: "connect", protocol: "tls", name: `${SENTINEL}.example.com`, port: 443 },
      { stage: "connect", protocol: "connect", name: `${SENTINEL}.example.com`, port: 443 },
    ] as const) {
      const v = decide(ctx(mode), attempt);
      expect(permits(v)).toBe(false);
      expect(v.reasons).toContain("secret-leak");
    }
    expect(decide(ctx(mode), { stage: "dns", protocol: "dns", name: "www.example.com", recordType: "A" }).verdict).toBe("allow");
  });

  it("a credential pattern is blocked in enforcing and would-block in observing", () => {
    const attempt = { stage: "connect", protocol: "http", name: "api.postmarkapp.com", port: 443, credentials: ["aws-access-key"] } as const;
    expect(decide(ctx("enforcing"), attempt)).toMatchObject({ verdict: "block", reasons: ["credential-pattern"], credentials: ["aws-access-key"] });
    expect(decide(ctx("observing"), attempt).verdict).toBe("would-block");
  });
});
