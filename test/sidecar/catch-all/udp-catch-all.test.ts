import { describe, expect, it } from "vitest";
import type { CaughtDatagram, DatagramCatcher } from "../../../src/sidecar/catch-all/original-destination.js";
import { UdpCatchAll } from "../../../src/sidecar/catch-all/udp-catch-all.js";
import { ConnectionRate } from "../../../src/sidecar/proxy/connection-rate.js";
import { EgressGate } from "../../../src/sidecar/proxy/egress-gate.js";
import { testContext } from "../../support/sidecar-context.js";

/**
 * The UDP catch-all's bookkeeping: each datagram the netns handed over becomes one event with
 * its original destination (address from the header, port from where the netns moved it),
 * decided by the core; a flood becomes a bounded number of events that still counts the rest.
 * The socket itself is the native addon's, exercised in test/docker/every-attempt.test.ts.
 */
class QueuedDatagrams implements DatagramCatcher {
  readonly queue: CaughtDatagram[] = [];
  closed = false;
  udpOpen(): number {
    return 7;
  }
  udpReceive(): CaughtDatagram | null {
    return this.queue.shift() ?? null;
  }
  udpClose(): void {
    this.closed = true;
  }
}

const datagram = (address: string, port: number): CaughtDatagram => ({ from: "198.18.0.2", fromPort: port, address, port: 15001, size: 5, head: Buffer.alloc(0) });

function setup(maxEventsPerSecond?: number) {
  const ctx = testContext({ policy: { mode: "enforcing", allow: [{ cidr: "10.9.0.0/16", ports: [5000] }] } });
  const catcher = new QueuedDatagrams();
  const udp = new UdpCatchAll({ ctx, gate: new EgressGate(ctx, new ConnectionRate(() => ctx.now())), catcher, host: "0.0.0.0", port: 15001, pollMs: 60_000, ...(maxEventsPerSecond !== undefined ? { maxEventsPerSecond } : {}) });
  udp.open();
  return { ctx, catcher, udp };
}

describe("the UDP catch-all", () => {
  it("records each datagram with its original destination, refused unless declared, and never forwarded", () => {
    const { ctx, catcher, udp } = setup();
    catcher.queue.push(datagram("169.254.169.254", 53), datagram("10.0.0.1", 4444), datagram("10.9.1.1", 5000));
    expect(udp.drain()).toBe(3);
    const events = ctx.sink.egress();
    expect(events.map((e) => [e.protocol, e.ip, e.port, e.verdict])).toEqual([
      ["udp", "169.254.169.254", 53, "block"],
      ["udp", "10.0.0.1", 4444, "block"],
      ["udp", "10.9.1.1", 5000, "allow"],
    ]);
    expect(events[0]!.reasons).toContain("destination-metadata");
    expect(events[1]!.reasons).toContain("undeclared-ip");
    expect(events.every((e) => e.error?.startsWith("udp datagram not forwarded") === true && e.bytesUp === 5)).toBe(true);
    udp.close();
    expect(catcher.closed).toBe(true);
  });

  it("under a flood, emits at most maxEventsPerSecond events a second", () => {
    const { ctx, catcher, udp } = setup(10);
    for (let i = 0; i < 50; i++) catcher.queue.push(datagram("10.0.0.1", 1000 + i));
    udp.drain();
    expect(ctx.sink.egress()).toHaveLength(10);
    udp.close();
  });
});
