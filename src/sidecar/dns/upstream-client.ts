import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { randomInt } from "node:crypto";
import dnsPacket from "dns-packet";
import type { Logger } from "pino";
import { HangarError } from "../../core/errors.js";
import { normaliseHostName } from "../../core/names.js";
import { parseIp } from "../../core/ip.js";
import { LengthPrefixedReader, frameMessage } from "./tcp-framing.js";
import { QTYPE } from "./dns-message.js";

/**
 * The sidecar's own stub client for the upstream resolvers. Only names the decision
 * permits a lookup for (`permitsLookup`) should get here. AAAA is never asked: the sandbox
 * has no IPv6.
 * Anti-spoofing: a fresh connected socket (random source port, replies from other peers are
 * discarded by the kernel), a random query id, and the echoed question must match.
 */
export interface UpstreamServer {
  readonly host: string;
  readonly port: number;
}

export interface UpstreamDnsClientOptions {
  readonly servers: readonly UpstreamServer[];
  /** Per attempt (one server, one transport). Default 2000. */
  readonly timeoutMs?: number;
  /** Extra rounds over the whole server list after the first. Default 1. */
  readonly retries?: number;
  /** Largest answer kept from one response. Default 32. */
  readonly maxRecords?: number;
  readonly logger?: Logger;
}

export type UpstreamRcode = "NOERROR" | "NXDOMAIN";
export type ExtraRecordType = "TXT" | "HTTPS" | "SVCB";

export interface AddressAnswer {
  readonly rcode: UpstreamRcode;
  /** Distinct IPv4 addresses at the end of the CNAME chain. */
  readonly ips: readonly string[];
  /** Seconds: the smallest TTL along the chain, or the negative-caching TTL. */
  readonly ttl: number;
}

export interface RawRecord {
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Buffer;
}

export interface RecordAnswer {
  readonly rcode: UpstreamRcode;
  /** Records at the end of the CNAME chain, to be presented as owned by the queried name. */
  readonly records: readonly RawRecord[];
  readonly ttl: number;
}

/** What the name ledger needs. */
export interface AddressSource {
  resolveA(name: string): Promise<AddressAnswer>;
}

/** What the DNS server needs for the record types a policy may declare. */
export interface RecordSource {
  queryRecords(name: string, type: ExtraRecordType): Promise<RecordAnswer>;
}

const MAX_CHAIN = 8;
const MAX_TCP_MESSAGE = 65_535;
const EDNS_UDP_SIZE = 1232;
const TYPE_CODES = { A: QTYPE.A, TXT: QTYPE.TXT, HTTPS: QTYPE.HTTPS, SVCB: QTYPE.SVCB } as const;
type AskType = keyof typeof TYPE_CODES;

// dns-packet names types it does not know "UNKNOWN_<n>", in both directions.
const packetType = (t: AskType): string => (t === "HTTPS" || t === "SVCB" ? `UNKNOWN_${TYPE_CODES[t]}` : t);

type Decoded = ReturnType<typeof dnsPacket.decode>;
type AnyAnswer = NonNullable<Decoded["answers"]>[number];

export class UpstreamDnsClient implements AddressSource, RecordSource {
  private readonly servers: readonly UpstreamServer[];
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly maxRecords: number;
  private readonly inflight = new Set<(err: Error) => void>();
  private readonly idle = new Set<() => void>();
  private state: "open" | "closing" | "closed" = "open";

  constructor(private readonly options: UpstreamDnsClientOptions) {
    if (options.servers.length === 0) throw new HangarError("HANGAR_CONFIG_INVALID", "at least one upstream DNS server is required");
    for (const s of options.servers) {
      if (parseIp(s.host)?.version !== 4 || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
        throw new HangarError("HANGAR_CONFIG_INVALID", `upstream DNS server ${s.host}:${s.port} is not an IPv4 address and port`, {
          data: { host: s.host, port: s.port },
        });
      }
    }
    this.servers = [...options.servers];
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.retries = options.retries ?? 1;
    this.maxRecords = options.maxRecords ?? 32;
  }

  async resolveA(name: string): Promise<AddressAnswer> {
    const { packet, qname } = await this.ask(name, "A");
    const rcode = rcodeOf(packet);
    const chain = followChain(packet.answers ?? [], qname);
    const ips: string[] = [];
    let ttl = chain.ttl;
    for (const a of packet.answers ?? []) {
      const data = stringData(a, "A");
      if (data === undefined || a.name.toLowerCase() !== chain.owner) continue;
      if (parseIp(data)?.version !== 4 || ips.includes(data)) continue;
      if (ips.length >= this.maxRecords) break;
      ips.push(data);
      ttl = Math.min(ttl, ttlOf(a));
    }
    return { rcode, ips, ttl: ips.length > 0 ? ttl : negativeTtl(packet) };
  }

  async queryRecords(name: string, type: ExtraRecordType): Promise<RecordAnswer> {
    const { packet, qname } = await this.ask(name, type);
    const rcode = rcodeOf(packet);
    const chain = followChain(packet.answers ?? [], qname);
    const want = packetType(type);
    const records: RawRecord[] = [];
    let ttl = chain.ttl;
    for (const a of packet.answers ?? []) {
      if ((a.type as string) !== want || a.name.toLowerCase() !== chain.owner) continue;
      const rdata = rawData(a);
      if (rdata === undefined) continue;
      if (records.length >= this.maxRecords) break;
      records.push({ type: TYPE_CODES[type], ttl: ttlOf(a), rdata });
      ttl = Math.min(ttl, ttlOf(a));
    }
    return { rcode, records, ttl: records.length > 0 ? ttl : negativeTtl(packet) };
  }

  /** Waits for queries in flight, then refuses new ones. Safe to call twice. */
  async close(): Promise<void> {
    if (this.state === "open") this.state = "closing";
    if (this.inflight.size > 0) await new Promise<void>((resolve) => this.idle.add(resolve));
    this.state = "closed";
  }

  /** Aborts queries in flight (they reject with HANGAR_CLOSED). */
  async destroy(): Promise<void> {
    this.state = "closed";
    for (const abort of [...this.inflight]) abort(new HangarError("HANGAR_CLOSED", "upstream DNS client destroyed"));
  }

  private destroyed(): boolean {
    return this.state === "closed";
  }

  private async ask(rawName: string, type: AskType): Promise<{ packet: Decoded; qname: string }> {
    if (this.state !== "open") throw new HangarError("HANGAR_CLOSED", "upstream DNS client is closed");
    const qname = normaliseHostName(rawName);
    if (qname === undefined) throw new HangarError("HANGAR_DNS_UPSTREAM", `not a host name: ${JSON.stringify(rawName)}`, { data: { reason: "invalid-name" } });
    const failures: string[] = [];
    for (let round = 0; round <= this.retries; round++) {
      for (const server of this.servers) {
        if (this.destroyed()) throw new HangarError("HANGAR_CLOSED", "upstream DNS client destroyed");
        try {
          let packet = await this.exchange(server, qname, type, "udp");
          if (packet.flag_tc) packet = await this.exchange(server, qname, type, "tcp");
          const rcode = packet.flags === undefined ? 0 : packet.flags & 0xf;
          if (rcode === 0 || rcode === 3) return { packet, qname };
          failures.push(`${server.host}:${server.port} rcode ${rcode}`);
        } catch (err) {
          if (err instanceof HangarError && err.code === "HANGAR_CLOSED") throw err;
          failures.push(`${server.host}:${server.port} ${(err as Error).message}`);
        }
      }
    }
    this.options.logger?.warn({ name: qname, type, failures }, "upstream DNS failed");
    throw new HangarError("HANGAR_DNS_UPSTREAM", `upstream DNS failed for ${qname} ${type}: ${failures.join("; ")}`, {
      data: { name: qname, type, rcode: "SERVFAIL", failures },
    });
  }

  private exchange(server: UpstreamServer, qname: string, type: AskType, transport: "udp" | "tcp"): Promise<Decoded> {
    const id = randomInt(0, 0x10000);
    const query = dnsPacket.encode({
      type: "query",
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: packetType(type) as "A", name: qname, class: "IN" }],
      additionals: [{ type: "OPT", name: ".", udpPayloadSize: EDNS_UDP_SIZE } as AnyAnswer],
    });
    const accept = (msg: Buffer): Decoded | undefined => matchResponse(msg, id, qname, packetType(type));
    return transport === "udp" ? this.udp(server, query, accept) : this.tcp(server, query, accept);
  }

  private track<T>(run: (done: (err: Error | undefined, value?: T) => void) => () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let cleanup: () => void = () => undefined;
      const timer = setTimeout(() => done(new Error(`timeout after ${this.timeoutMs}ms`)), this.timeoutMs);
      const abort = (err: Error): void => done(err);
      const done = (err: Error | undefined, value?: T): void => {
        if (!this.inflight.delete(abort)) return;
        clearTimeout(timer);
        cleanup();
        if (err === undefined) resolve(value as T);
        else reject(err);
        if (this.inflight.size === 0) {
          const waiting = [...this.idle];
          this.idle.clear();
          for (const wake of waiting) wake();
        }
      };
      this.inflight.add(abort);
      cleanup = run(done);
    });
  }

  private udp(server: UpstreamServer, query: Buffer, accept: (msg: Buffer) => Decoded | undefined): Promise<Decoded> {
    return this.track<Decoded>((done) => {
      const socket = createSocket("udp4");
      socket.on("error", (err) => done(err));
      // A reply that does not match (a spoof, or a late answer to an older query) is ignored, not fatal.
      socket.on("message", (msg) => {
        const packet = accept(msg);
        if (packet !== undefined) done(undefined, packet);
      });
      socket.connect(server.port, server.host, () => socket.send(query, (err) => err && done(err)));
      return () => {
        try {
          socket.close();
        } catch {
          // already closed after an error
        }
      };
    });
  }

  private tcp(server: UpstreamServer, query: Buffer, accept: (msg: Buffer) => Decoded | undefined): Promise<Decoded> {
    return this.track<Decoded>((done) => {
      const reader = new LengthPrefixedReader(MAX_TCP_MESSAGE);
      const socket = connect({ host: server.host, port: server.port });
      socket.on("error", (err) => done(err));
      socket.on("close", () => done(new Error("connection closed before an answer")));
      socket.on("connect", () => socket.write(frameMessage(query)));
      socket.on("data", (chunk: Buffer) => {
        let frames: Buffer[];
        try {
          frames = reader.push(chunk);
        } catch (err) {
          done(err as Error);
          return;
        }
        for (const f of frames) {
          const packet = accept(f);
          if (packet !== undefined) return done(undefined, packet);
        }
      });
      return () => socket.destroy();
    });
  }
}

function matchResponse(msg: Buffer, id: number, qname: string, type: string): Decoded | undefined {
  if (msg.length < 12 || msg.readUInt16BE(0) !== id) return undefined;
  let packet: Decoded;
  try {
    packet = dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
  const q = packet.questions?.[0];
  if (packet.type !== "response" || packet.questions?.length !== 1 || q === undefined) return undefined;
  if (q.name.toLowerCase() !== qname || (q.type as string) !== type || (q.class ?? "IN") !== "IN") return undefined;
  return packet;
}

function rcodeOf(packet: Decoded): UpstreamRcode {
  return ((packet.flags ?? 0) & 0xf) === 3 ? "NXDOMAIN" : "NOERROR";
}

/** Follows CNAMEs from the question name; answers count only at the end of the chain. */
function followChain(answers: readonly AnyAnswer[], qname: string): { owner: string; ttl: number } {
  let owner = qname;
  let ttl = Number.MAX_SAFE_INTEGER;
  const seen = new Set([owner]);
  for (let hop = 0; hop < MAX_CHAIN; hop++) {
    const cname = answers.find((a) => a.name.toLowerCase() === owner && stringData(a, "CNAME") !== undefined);
    const target = cname === undefined ? undefined : stringData(cname, "CNAME");
    if (cname === undefined || target === undefined) break;
    const next = target.toLowerCase().replace(/\.$/, "");
    if (seen.has(next)) break;
    seen.add(next);
    owner = next;
    ttl = Math.min(ttl, ttlOf(cname));
  }
  return { owner, ttl };
}

function negativeTtl(packet: Decoded): number {
  const soa = packet.authorities?.find((a) => a.type === "SOA");
  if (soa === undefined || soa.type !== "SOA") return 0;
  return Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0);
}

function ttlOf(a: AnyAnswer): number {
  return "ttl" in a && typeof a.ttl === "number" ? a.ttl : 0;
}

function stringData(a: AnyAnswer, type: "A" | "CNAME"): string | undefined {
  return a.type === type && "data" in a && typeof a.data === "string" ? a.data : undefined;
}

function rawData(a: AnyAnswer): Buffer | undefined {
  if (a.type === "TXT") {
    const strings = Array.isArray(a.data) ? a.data : [a.data];
    return Buffer.concat(strings.map((s) => {
      const b = typeof s === "string" ? Buffer.from(s) : s;
      return Buffer.concat([Buffer.from([b.length]), b]);
    }));
  }
  return Buffer.isBuffer((a as { data?: unknown }).data) ? (a as { data: Buffer }).data : undefined;
}
