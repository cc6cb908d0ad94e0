import type { Verdict } from "../../core/decision.js";
import { emitEgress, newAttempt } from "../proxy/egress-event.js";
import type { EgressGate } from "../proxy/egress-gate.js";
import type { SidecarContext } from "../sidecar-context.js";
import type { CaughtDatagram, DatagramCatcher } from "./original-destination.js";

/**
 * Every UDP datagram the sandbox sends, except DNS to the sidecar, arrives on one socket: the
 * sidecar's netns delivers any destination address locally and rewrites the port to ours,
 * moving the original destination port into the source port (sandbox-gateway.ts). Each one
 * is decided on its address and port and recorded; none is forwarded (the sidecar relays
 * only DNS), so a declared one is recorded as allowed and "not forwarded".
 *
 * The socket lives outside libuv, so it is drained on a short timer: a datagram waits at
 * most `pollMs`, and an idle sandbox costs one non-blocking recvmsg per tick.
 */
export interface UdpCatchAllOptions {
  readonly ctx: SidecarContext;
  readonly gate: EgressGate;
  readonly catcher: DatagramCatcher;
  readonly host: string;
  readonly port: number;
  /** How often the socket is drained. Default 20 ms. */
  readonly pollMs?: number;
  /** Events per second at most; the rest are counted into the next one (a flood costs counters, not a flood of events). */
  readonly maxEventsPerSecond?: number;
}

const MAX_PER_TICK = 256;

export class UdpCatchAll {
  private fd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private inWindow = 0;
  private unreported = 0;

  constructor(private readonly options: UdpCatchAllOptions) {}

  open(): void {
    if (this.fd !== undefined) return;
    this.fd = this.options.catcher.udpOpen(this.options.host, this.options.port);
    this.timer = setInterval(() => this.drain(), this.options.pollMs ?? 20);
    this.timer.unref();
  }

  /** Takes what is waiting now, then closes the socket. Idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    clearInterval(this.timer);
    this.drain();
    this.options.catcher.udpClose(this.fd);
    this.fd = undefined;
  }

  /** Reads and records every waiting datagram (bounded per call). Returns how many. */
  drain(): number {
    if (this.fd === undefined) return 0;
    let n = 0;
    for (; n < MAX_PER_TICK; n++) {
      let datagram: CaughtDatagram | null;
      try {
        datagram = this.options.catcher.udpReceive(this.fd, 0);
      } catch (err) {
        this.options.ctx.logger.warn({ err }, "udp catch-all receive failed");
        break;
      }
      if (datagram === null) break;
      this.record(datagram);
    }
    return n;
  }

  private record(d: CaughtDatagram): void {
    const { ctx, gate } = this.options;
    const now = ctx.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= (this.options.maxEventsPerSecond ?? 200)) {
      this.unreported += 1;
      return;
    }
    this.inWindow += 1;
    // The original destination port travels in the source port; the address is the header's own.
    const ip = d.address ?? "0.0.0.0";
    const port = d.fromPort;
    const facts = newAttempt(ctx, "transparent", "udp", d.from);
    facts.ip = ip;
    facts.port = port;
    const verdict: Verdict = gate.check({ protocol: "udp", port, ip, opaque: true });
    const more = this.unreported > 0 ? ` (and ${this.unreported} more datagram(s) not recorded one by one)` : "";
    this.unreported = 0;
    emitEgress(ctx, facts, verdict, { bytesUp: d.size, error: `udp datagram not forwarded${more}` });
  }
}
