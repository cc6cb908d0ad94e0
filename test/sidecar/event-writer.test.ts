import { describe, expect, it } from "vitest";
import type { EgressEvent, SidecarEvent } from "../../src/core/events.js";
import { EventWriter } from "../../src/sidecar/event-writer.js";

function event(i: number): EgressEvent {
  return { v: 1, ts: new Date(0).toISOString(), id: `id-${i}`, type: "egress", phase: "decide", server: "s", verdict: "allow", reasons: ["declared-host"], protocol: "http", url: `/r/${i}` };
}

/** An output that records each write, and a scheduler the test runs by hand. */
function rig(maxBufferedChars?: number) {
  const writes: string[] = [];
  const queued: (() => void)[] = [];
  const writer = new EventWriter({
    out: { write: (chunk: string) => writes.push(chunk) },
    schedule: (fn) => queued.push(fn),
    ...(maxBufferedChars !== undefined ? { maxBufferedChars } : {}),
  });
  const endTurn = (): void => {
    for (const fn of queued.splice(0)) fn();
  };
  const lines = (): SidecarEvent[] => writes.join("").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as SidecarEvent);
  return { writer, writes, queued, endTurn, lines };
}

describe("EventWriter", () => {
  it("writes the events of one turn in one write, in order, as the JSON lines they were", () => {
    const { writer, writes, endTurn } = rig();
    for (let i = 0; i < 5; i++) writer.emit(event(i));
    expect(writes).toEqual([]);
    endTurn();
    expect(writes).toEqual([[0, 1, 2, 3, 4].map((i) => `${JSON.stringify(event(i))}\n`).join("")]);
  });

  it("schedules one flush per turn, and a write per turn that had events", () => {
    const { writer, writes, queued, endTurn, lines } = rig();
    writer.emit(event(0));
    writer.emit(event(1));
    expect(queued).toHaveLength(1);
    endTurn();
    endTurn();
    writer.emit(event(2));
    endTurn();
    expect(writes).toHaveLength(2);
    expect(lines().map((e) => (e as EgressEvent).id)).toEqual(["id-0", "id-1", "id-2"]);
  });

  it("writes at once, mid-turn, when the batch reaches its bound", () => {
    const one = `${JSON.stringify(event(0))}\n`.length;
    const { writer, writes, endTurn, lines } = rig(one * 3);
    for (let i = 0; i < 7; i++) writer.emit(event(i));
    expect(writes).toHaveLength(2);
    endTurn();
    expect(writes).toHaveLength(3);
    expect(lines()).toHaveLength(7);
  });

  it("flush() writes what is buffered and nothing when empty", () => {
    const { writer, writes, endTurn } = rig();
    writer.flush();
    writer.emit(event(0));
    writer.flush();
    expect(writes).toHaveLength(1);
    endTurn();
    expect(writes).toHaveLength(1);
  });

  it("close() writes everything buffered, then writes each later event at once", () => {
    const { writer, writes, lines } = rig();
    writer.emit(event(0));
    writer.emit(event(1));
    writer.close();
    expect(writes).toHaveLength(1);
    writer.emit(event(2));
    expect(writes).toHaveLength(2);
    writer.close();
    expect(lines()).toHaveLength(3);
  });

  it("flushes on its own a few milliseconds later with the default scheduler, gathering what came meanwhile", async () => {
    const writes: string[] = [];
    const writer = new EventWriter({ out: { write: (c: string) => writes.push(c) } });
    writer.emit(event(0));
    await new Promise((r) => setImmediate(r));
    // Later turns (a request's close comes in another turn than its decide) join the same write.
    writer.emit(event(1));
    expect(writes).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(writes).toHaveLength(1);
    expect(writes[0]!.split("\n").filter((l) => l.length > 0)).toHaveLength(2);
  });
});
