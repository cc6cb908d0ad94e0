import { describe, expect, it } from "vitest";
import { ConnectionRate } from "../../../src/sidecar/proxy/connection-rate.js";

describe("ConnectionRate", () => {
  it("counts hits per key over a sliding minute", () => {
    let now = 1_000_000;
    const rate = new ConnectionRate(() => now);
    expect(rate.hit("a:443")).toBe(1);
    expect(rate.hit("a:443")).toBe(2);
    expect(rate.hit("b:443")).toBe(1);
    now += 30_000;
    expect(rate.hit("a:443")).toBe(3);
    now += 35_000; // the first two fell out of the window
    expect(rate.hit("a:443")).toBe(2);
    now += 120_000;
    expect(rate.hit("a:443")).toBe(1);
  });

  it("keeps at most maxKeys keys, dropping the least recently hit", () => {
    const rate = new ConnectionRate(() => 0, 2);
    rate.hit("a");
    rate.hit("b");
    rate.hit("a");
    rate.hit("c"); // evicts b
    expect(rate.hit("a")).toBe(3);
    expect(rate.hit("b")).toBe(1);
  });
});
