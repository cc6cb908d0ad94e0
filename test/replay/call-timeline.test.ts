import { describe, expect, it } from "vitest";
import type { EgressEvent } from "../../src/core/events.js";
import { CallTimeline } from "../../src/replay/call-timeline.js";
import { observedBaseline } from "../../src/replay/observed-baseline.js";
import type { ScenarioRun } from "../../src/replay/scenario-session.js";

const T0 = Date.parse("2025-03-01T10:00:00.000Z");
const iso = (ms: number): string => new Date(ms).toISOString();

function egress(id: string, at: number, fields: Partial<EgressEvent> = {}): EgressEvent {
  return { v: 1, ts: iso(at), id, type: "egress", phase: "decide", server: "mail", verdict: "block", reasons: ["capture"], protocol: "http", name: "api.mail.test", port: 80, ...fields };
}

describe("CallTimeline: attribution by the event's own timestamp", () => {
  it("gives an event to the one call in flight, and none outside calls", () => {
    const t = new CallTimeline(100);
    const a = t.begin("send_email", T0);
    t.end(a, T0 + 50);
    const b = t.begin("list_templates", T0 + 500);
    t.end(b, T0 + 520);
    expect(t.toolsAt(T0 - 1)).toEqual([]);
    expect(t.toolsAt(T0)).toEqual(["send_email"]);
    expect(t.toolsAt(T0 + 50)).toEqual(["send_email"]);
    // The linger: a close, or traffic finished just after the answer.
    expect(t.toolsAt(T0 + 150)).toEqual(["send_email"]);
    expect(t.toolsAt(T0 + 151)).toEqual([]);
    expect(t.toolsAt(T0 + 510)).toEqual(["list_templates"]);
  });

  it("stops a call's linger where the next call begins: sequential calls never share an event", () => {
    const t = new CallTimeline(1000);
    t.end(t.begin("send_email", T0), T0 + 10);
    t.begin("list_templates", T0 + 20);
    expect(t.toolsAt(T0 + 15)).toEqual(["send_email"]);
    expect(t.toolsAt(T0 + 20)).toEqual(["list_templates"]);
    expect(t.toolsAt(T0 + 900)).toEqual(["list_templates"]);
  });

  it("at millisecond boundaries: the driver starts the next call a millisecond after the last ended, and then nothing is shared", () => {
    const t = new CallTimeline(1000);
    t.end(t.begin("send_email", T0), T0 + 10);
    t.begin("list_templates", T0 + 11);
    expect(t.toolsAt(T0 + 10)).toEqual(["send_email"]);
    expect(t.toolsAt(T0 + 11)).toEqual(["list_templates"]);
    // Without the gap the boundary millisecond is ambiguous, and says so.
    const tight = new CallTimeline(1000);
    tight.end(tight.begin("send_email", T0), T0 + 10);
    tight.begin("list_templates", T0 + 10);
    expect(tight.toolsAt(T0 + 10)).toEqual(["send_email", "list_templates"]);
  });

  it("gives an event to every call in flight when calls overlap, each tool once", () => {
    const t = new CallTimeline(0);
    const a = t.begin("send_email", T0);
    const b = t.begin("list_templates", T0 + 10);
    t.begin("send_email", T0 + 20);
    expect(t.toolsAt(T0 + 25)).toEqual(["send_email", "list_templates"]);
    t.end(a, T0 + 30);
    t.end(b, T0 + 30);
    expect(t.toolsAt(T0 + 40)).toEqual(["send_email"]);
  });

  it("attributes a close like its decide, even when it arrives after the call", () => {
    const t = new CallTimeline(0);
    t.end(t.begin("send_email", T0), T0 + 10);
    const events = t.attributeAll([egress("c1", T0 + 5), egress("c1", T0 + 5000, { phase: "close", bytesUp: 10, bytesDown: 20 }), egress("c2", T0 + 6000)]);
    expect(events.map((e) => e.attribution?.tools)).toEqual([["send_email"], ["send_email"], []]);
  });

  it("an unreadable timestamp is attributed to nothing rather than guessed", () => {
    const t = new CallTimeline();
    t.begin("send_email", T0);
    expect(t.attribute(egress("x", T0, { ts: "yesterday" })).attribution).toEqual({ tools: [] });
  });
});

describe("observedBaseline", () => {
  it("folds the calls at their start and the attributed events into a learning baseline", () => {
    const run: ScenarioRun = {
      server: "mail",
      tools: [],
      calls: [0, 1, 2].map((i) => ({ tool: "send_email", arguments: {}, index: 0, repetition: i, startedAt: T0 + i * 100, endedAt: T0 + i * 100 + 50, outcome: "tool-error" as const })),
      events: [0, 1, 2].map((i) => ({ ...egress(`e${i}`, T0 + i * 100 + 10), attribution: { tools: ["send_email"] } })),
      droppedEvents: 0,
    };
    const { baseline, ignored } = observedBaseline(run, { rateTolerance: 2 });
    expect(ignored).toBe(0);
    expect(baseline).toMatchObject({ server: "mail", status: "learning", rateTolerance: 2, observed: { toolCalls: 3, events: 3 } });
    expect(baseline.destinations).toEqual([expect.objectContaining({ name: "api.mail.test", port: 80, count: 3, perMinute: { max: 3, p95: 3 }, tools: ["send_email"] })]);
    expect(baseline.tools).toEqual([expect.objectContaining({ name: "send_email", calls: 3, destinations: ["api.mail.test:80"] })]);
  });
});
