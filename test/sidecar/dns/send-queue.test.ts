import type { Socket as UdpSocket } from "node:dgram";
import { describe, expect, it } from "vitest";
import { sendQueueDrained } from "../../../src/sidecar/dns/udp-transports.js";

/** A socket whose send queue holds `counts` in turn (the last one repeated). */
function socketWithQueue(counts: number[] | (() => number)): { udp: UdpSocket; asked: () => number } {
  let asked = 0;
  const next = typeof counts === "function" ? counts : () => counts[Math.min(asked - 1, counts.length - 1)]!;
  const udp = {
    getSendQueueCount(): number {
      asked += 1;
      return next();
    },
  } as unknown as UdpSocket;
  return { udp, asked: () => asked };
}

describe("sendQueueDrained (close() lets queued replies leave before it shuts the UDP socket)", () => {
  it("waits while replies are queued and returns once the queue is empty", async () => {
    const { udp, asked } = socketWithQueue([3, 2, 1, 0]);
    await sendQueueDrained(udp, 5_000);
    expect(asked()).toBe(4);
  });

  it("returns at once when nothing is queued", async () => {
    const { udp, asked } = socketWithQueue([0]);
    await sendQueueDrained(udp, 5_000);
    expect(asked()).toBe(1);
  });

  it("gives up after its limit when the queue never drains", async () => {
    const { udp, asked } = socketWithQueue([1]);
    const started = Date.now();
    await sendQueueDrained(udp, 50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(asked()).toBeGreaterThan(1);
  });

  it("takes a socket that is no longer bound as drained", async () => {
    const { udp, asked } = socketWithQueue(() => {
      throw new Error("Not running");
    });
    await sendQueueDrained(udp, 5_000);
    expect(asked()).toBe(1);
  });
});
