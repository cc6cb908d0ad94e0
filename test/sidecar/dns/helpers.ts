import { createSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import dnsPacket from "dns-packet";
import type { EventSink } from "../../../src/core/events.js";
import { DnsServer, type DnsServerLimits } from "../../../src/sidecar/dns/dns-server.js";
import { NameLedger } from "../../../src/sidecar/dns/name-ledger.js";
import { UpstreamDnsClient } from "../../../src/sidecar/dns/upstream-client.js";
import type { AnswerMode } from "../../../src/sidecar/dns/query-handler.js";
import { loadUdpBatchAddon } from "../../../src/sidecar/dns/udp-batch-addon.js";
import { batchedBinder, type UdpBinder } from "../../../src/sidecar/dns/udp-transports.js";
import { LengthPrefixedReader, frameMessage } from "../../../src/sidecar/dns/tcp-framing.js";
import { FakeDnsServer } from "../../support/fake-dns.js";
import { testContext, type TestContextOptions } from "../../support/sidecar-context.js";
import { TEST_UDP_BATCH_ADDON } from "./batched-udp-setup.js";

export type Decoded = dnsPacket.DecodedPacket;

const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

export function rcode(p: Decoded): string {
  return RCODE_NAMES[(p.flags ?? 0) & 0xf] ?? `RCODE${(p.flags ?? 0) & 0xf}`;
}

export function aData(p: Decoded): string[] {
  return (p.answers ?? []).flatMap((a) => (a.type === "A" ? [a.data] : []));
}

export function encodeQuery(name: string, type = "A", options: { id?: number; edns?: number; klass?: string } = {}): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: options.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as "A", class: (options.klass ?? "IN") as "IN" }],
    ...(options.edns === undefined ? {} : { additionals: [{ type: "OPT", name: ".", udpPayloadSize: options.edns } as dnsPacket.Answer] }),
  });
}

/** Sends one datagram to 127.0.0.1:port; resolves with the reply, or undefined after `timeoutMs`. */
export function udpExchange(port: number, message: Buffer, timeoutMs = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const finish = (reply: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    socket.on("message", (msg) => finish(msg));
    socket.send(message, port, "127.0.0.1");
  });
}

export async function udpQuery(port: number, name: string, type = "A", options: { id?: number; edns?: number; klass?: string } = {}): Promise<Decoded> {
  const reply = await udpExchange(port, encodeQuery(name, type, options));
  if (reply === undefined) throw new Error(`no UDP answer for ${name} ${type}`);
  return dnsPacket.decode(reply);
}

/** A TCP client that reads framed replies as they come. */
export class TcpDnsClient {
  readonly replies: Buffer[] = [];
  closed = false;
  private readonly reader = new LengthPrefixedReader(65_535);
  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => this.replies.push(...this.reader.push(chunk)));
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => undefined);
  }

  static connect(port: number): Promise<TcpDnsClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port }, () => resolve(new TcpDnsClient(socket)));
      socket.once("error", reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(message: Buffer): void {
    this.socket.write(frameMessage(message));
  }

  async waitReplies(n: number, ms = 2000): Promise<Decoded[]> {
    await waitUntil(() => this.replies.length >= n, ms, `${n} TCP replies`);
    return this.replies.map((r) => dnsPacket.decode(r));
  }

  async waitClosed(ms = 2000): Promise<void> {
    await waitUntil(() => this.closed, ms, "TCP close");
  }

  close(): void {
    this.socket.destroy();
  }
}

export async function waitUntil(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const SIDECAR_ADDRESS = "127.0.0.1";
/** A public-class address used only as answer data: nothing ever connects to it. */
export const PUBLIC_IP = "23.45.67.89";

export interface HarnessOptions extends Omit<TestContextOptions, "resolver"> {
  answer?: AnswerMode;
  limits?: Partial<DnsServerLimits>;
  now?: () => number;
  /** Where events go instead of ctx.sink (an EventWriter, to take the encoded-line path). */
  events?: EventSink;
}

export interface Harness {
  readonly upstream: FakeDnsServer;
  readonly ctx: ReturnType<typeof testContext>;
  readonly ledger: NameLedger;
  readonly client: UpstreamDnsClient;
  readonly server: DnsServer;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The UDP socket this run's DNS servers use: dgram, or (the "dns-batched" project, which sets
 * HANGAR_TEST_DNS_UDP=batched) the batched native socket its setup compiled. Missing: it throws.
 */
export const DNS_UDP: "dgram" | "batched" = process.env["HANGAR_TEST_DNS_UDP"] === "batched" ? "batched" : "dgram";

export function testUdpBinder(): { udp?: UdpBinder } {
  if (DNS_UDP === "dgram") return {};
  const addon = loadUdpBatchAddon(TEST_UDP_BATCH_ADDON);
  if (addon === undefined) throw new Error(`HANGAR_TEST_DNS_UDP=batched, but ${TEST_UDP_BATCH_ADDON} is missing (the dns-batched project's setup compiles it)`);
  return { udp: batchedBinder(addon) };
}

/** Fake upstream → UpstreamDnsClient → NameLedger → DnsServer, all on loopback. */
export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const upstream = await FakeDnsServer.start();
  const client = new UpstreamDnsClient({ servers: [upstream.server], timeoutMs: 500, retries: 0 });
  const now = options.now ?? (() => Date.now());
  const ledger = new NameLedger({ upstream: client, now });
  const base = testContext({ ...options, resolver: ledger });
  const ctx = Object.assign(base, { now }, options.events === undefined ? {} : { events: options.events });
  const server = new DnsServer({
    context: ctx,
    records: client,
    host: "127.0.0.1",
    port: 0,
    answer: options.answer ?? { kind: "sidecar", address: SIDECAR_ADDRESS },
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...testUdpBinder(),
  });
  const { port } = await server.listen();
  return {
    upstream,
    ctx,
    ledger,
    client,
    server,
    port,
    async close() {
      await server.destroy();
      await client.destroy();
      await upstream.close();
    },
  };
}
