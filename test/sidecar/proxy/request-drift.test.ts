import { afterEach, describe, expect, it } from "vitest";
import { freezeBaseline, recordBaseline, toBaselineView, type Observation } from "../../../src/core/baseline/index.js";
import type { EgressEvent } from "../../../src/core/events.js";
import { withTransparent, type Scenario } from "./fixtures.js";
import { connectTcp, readAll } from "./harness.js";

/**
 * The postmark Bcc, on loopback: a baseline learned from the sidecar's own events (their
 * request shapes), frozen, then a request that only adds a `Bcc` body field. ENFORCING refuses
 * it before a byte of it is forwarded; OBSERVING forwards it as would-block. Events carry the
 * field names, never their values.
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

const V1 = { From: "billing@shop.test", To: "alice@example.test", Subject: "Invoice" };
const BCC = { ...V1, Bcc: "collector@attacker.test" };

async function post(s: Scenario, body: unknown): Promise<string> {
  const text = JSON.stringify(body);
  const socket = await connectTcp(s.port);
  const all = readAll(socket);
  socket.write(`POST /email HTTP/1.1\r\nHost: api.allowed.test:${s.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  return (await all).toString();
}

const served = (s: Scenario): { path: string; bodyBytes: number }[] => (s.allowed as unknown as { requests: { path: string; bodyBytes: number }[] }).requests;

/** The run so far as a baseline recorder sees it: each decide event attributed to send_email. */
function observations(events: readonly EgressEvent[]): Observation[] {
  return events
    .filter((e) => e.phase === "decide")
    .flatMap((e): Observation[] => [
      { kind: "tool-call", tool: "send_email", ts: e.ts },
      { kind: "event", event: { ...e, attribution: { tools: ["send_email"] } } },
    ]);
}

async function learnedScenario() {
  const s = await withTransparent({ kind: "http" });
  disposers.push(s.dispose);
  for (let i = 0; i < 2; i++) expect(await post(s, V1)).toMatch(/^HTTP\/1\.1 200/);
  const learned = recordBaseline({ server: s.ctx.server, rateTolerance: 100 }, observations(s.sink.egress()));
  const frozen = freezeBaseline(learned, new Date());
  expect(frozen.destinations[0]?.requests?.[0]).toMatchObject({ method: "POST", path: "/email", bodyFields: ["From", "Subject", "To"] });
  return { s, view: toBaselineView(frozen) };
}

describe("request-shape drift against a frozen baseline", () => {
  it("ENFORCING: a request that only adds Bcc is refused before any byte of it leaves; v1 still goes through whole", async () => {
    const { s, view } = await learnedScenario();
    s.ctx.setDecision({ ...s.ctx.decisionContext(), mode: "enforcing", baseline: view });
    const before = served(s).length;
    const refused = await post(s, BCC);
    expect(refused).toMatch(/^HTTP\/1\.1 403/);
    expect(refused).toMatch(/X-Hangar-Reasons: drift-new-request-field/i);
    expect(served(s)).toHaveLength(before);
    const event = await s.sink.waitFor((e) => e.phase === "decide" && e.verdict === "block");
    expect(event).toMatchObject({ reasons: ["drift-new-request-field"], driftFields: ["body Bcc"], bodyFields: ["Bcc", "From", "Subject", "To"], pathTemplate: "/email" });
    // Names only: no address ever reaches the event stream.
    expect(JSON.stringify(s.sink.egress())).not.toMatch(/@/);

    expect(await post(s, V1)).toMatch(/^HTTP\/1\.1 200/);
    expect(served(s).at(-1)).toMatchObject({ path: "/email", bodyBytes: Buffer.byteLength(JSON.stringify(V1)) });
  });

  it("OBSERVING: the Bcc request flows, recorded as would-block with the field it added", async () => {
    const { s, view } = await learnedScenario();
    s.ctx.setDecision({ ...s.ctx.decisionContext(), mode: "observing", baseline: view });
    expect(await post(s, BCC)).toMatch(/^HTTP\/1\.1 200/);
    expect(served(s).at(-1)).toMatchObject({ path: "/email", bodyBytes: Buffer.byteLength(JSON.stringify(BCC)) });
    expect(await s.sink.waitFor((e) => e.verdict === "would-block")).toMatchObject({ reasons: ["drift-new-request-field"], driftFields: ["body Bcc"] });
  });

  it("a body past the bound still arrives whole upstream after its decided prefix", async () => {
    const s = await withTransparent({ kind: "http" });
    disposers.push(s.dispose);
    const big = { From: "a", To: "b", Blob: "x".repeat(1_500_000) };
    expect(await post(s, big)).toMatch(/^HTTP\/1\.1 200/);
    expect(served(s).at(-1)).toMatchObject({ path: "/email", bodyBytes: Buffer.byteLength(JSON.stringify(big)) });
    expect(await s.sink.waitFor((e) => e.phase === "decide")).toMatchObject({ bodyKind: "not-inspected", bodyNotInspected: "too-large" });
  });
});
