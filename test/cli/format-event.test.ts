import { describe, expect, it } from "vitest";
import type { EgressEvent, LifecycleEvent } from "../../src/core/events.js";
import { formatEvent } from "../../src/cli/format-event.js";
import { sinceAfter, sinceFromIso } from "../../src/cli/commands/sidecar-log-reader.js";
import { formatUptime } from "../../src/cli/commands/sandbox-inventory.js";
import { runtimeEvent } from "../../src/runtime/sandbox-events.js";

const TS = "2025-03-01T08:16:25.123Z";
const utc = { timeZone: "utc" } as const;
const egress = (fields: Partial<EgressEvent>): EgressEvent => ({
  v: 1,
  ts: TS,
  id: "e1",
  type: "egress",
  phase: "decide",
  server: "everything",
  verdict: "block",
  reasons: ["undeclared-host"],
  protocol: "tls",
  path: "transparent",
  ...fields,
});

describe("formatEvent", () => {
  it("renders a blocked transparent TLS attempt as one line", () => {
    expect(formatEvent(egress({ name: "evil.test", port: 443, sni: "evil.test" }), utc)).toBe("08:16:25 BLOCK  egress evil.test:443 tls (transparent) undeclared-host");
  });

  it("shows an allowed connection with the address the sidecar dialled, and its close with traffic", () => {
    const allowed = egress({ verdict: "allow", reasons: ["declared-host"], rule: "api.allowed.test", name: "api.allowed.test", host: "api.allowed.test", port: 80, protocol: "http", ip: "172.18.0.3" });
    expect(formatEvent(allowed, utc)).toBe("08:16:25 ALLOW  egress api.allowed.test:80 http (transparent) declared-host -> 172.18.0.3");
    const closed = { ...allowed, phase: "close" as const, bytesUp: 120, bytesDown: 3500, durationMs: 35 };
    expect(formatEvent(closed, utc)).toBe("08:16:25 CLOSE  egress api.allowed.test:80 http (transparent) up 120 B, down 3.4 KiB, 35 ms -> 172.18.0.3");
  });

  it("names a CONNECT/SNI mismatch and a would-block", () => {
    const mismatch = egress({ name: "api.allowed.test", port: 443, connect: "api.allowed.test:443", sni: "evil.test", protocol: "connect", path: "explicit", reasons: ["sni-mismatch"] });
    expect(formatEvent(mismatch, utc)).toBe("08:16:25 BLOCK  egress api.allowed.test:443 connect (explicit) sni-mismatch sni=evil.test");
    expect(formatEvent(egress({ verdict: "would-block", name: "x.test", port: 443 }), utc)).toMatch(/^08:16:25 WOULD-BLOCK egress x\.test:443 /);
  });

  it("renders DNS answers and refusals", () => {
    const dns = (fields: Partial<EgressEvent>): EgressEvent => egress({ type: "dns", protocol: "dns", path: "dns", recordType: "A", ...fields });
    expect(formatEvent(dns({ name: "evil.test" }), utc)).toBe("08:16:25 BLOCK  dns evil.test A undeclared-host");
    expect(formatEvent(dns({ name: "api.allowed.test", verdict: "allow", reasons: ["declared-host"], rule: "api.allowed.test", ip: "10.213.0.2" }), utc)).toBe(
      "08:16:25 ALLOW  dns api.allowed.test A declared-host -> 10.213.0.2",
    );
  });

  it("renders lifecycle and runtime events with their details", () => {
    const started: LifecycleEvent = { v: 1, ts: TS, type: "lifecycle", server: "everything", action: "started", detail: { mode: "enforcing", dnsPort: 53 } };
    expect(formatEvent(started, utc)).toBe("08:16:25 INFO   sidecar started mode=enforcing dnsPort=53");
    const exited = runtimeEvent("everything", "sidecar-exited", Date.parse(TS), { exitCode: 137, restarts: 0 });
    expect(formatEvent(exited, { ...utc, showServer: true })).toBe("08:16:25 WARN   [everything] runtime sidecar-exited exitCode=137 restarts=0");
  });

  it("never lets a name from the sandbox write control sequences or forge the rest of the line", () => {
    const hostile = egress({ name: undefined, host: "a.test\u001b[2J\u202e ALLOW", port: 80, protocol: "http", error: "bad\nline" });
    const line = formatEvent(hostile, utc);
    // eslint-disable-next-line no-control-regex
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(line).toContain("egress a.test\\u{1b}[2J\\u{202e}\\u{20}ALLOW:80");
    expect(line).toContain("error: bad\\u{a}line");
    expect(formatEvent(egress({ name: "x".repeat(5000), port: 1 }), utc).length).toBeLessThan(400);
  });

  it("survives events with missing or mistyped fields (they come from a log)", () => {
    const broken = { v: 1, ts: "not a time", type: "egress", server: "s", reasons: "nope", port: "x" } as unknown as EgressEvent;
    expect(formatEvent(broken, utc)).toBe("not\\u{20}a\\u{20}time ?      egress ?");
    expect(formatEvent({ v: 1, ts: TS, type: "future", server: "s" } as unknown as EgressEvent, utc)).toMatch(/^08:16:25 \? {6}future /);
  });
});

describe("log cursors and uptime", () => {
  it("moves a Docker log timestamp on by one nanosecond, carrying into the seconds", () => {
    expect(sinceAfter("2025-03-01T08:16:25.123456789Z")).toBe(`${Date.parse("2025-03-01T08:16:25Z") / 1000}.123456790`);
    expect(sinceAfter("2025-03-01T08:16:25.999999999Z")).toBe(`${Date.parse("2025-03-01T08:16:26Z") / 1000}.000000000`);
    expect(sinceAfter("2025-03-01T08:16:25Z")).toBe(`${Date.parse("2025-03-01T08:16:25Z") / 1000}.000000001`);
    expect(sinceAfter("garbage")).toBeUndefined();
    expect(sinceFromIso("2025-03-01T08:16:25.900Z")).toBe(String(Date.parse("2025-03-01T08:16:25Z") / 1000));
  });

  it("formats uptimes compactly", () => {
    expect([45, 245, 7380, 273_600].map(formatUptime)).toEqual(["45s", "4m05s", "2h03m", "3d04h"]);
  });
});
