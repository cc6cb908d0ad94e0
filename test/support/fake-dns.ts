import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import dnsPacket from "dns-packet";
import { LengthPrefixedReader, frameMessage } from "../../src/sidecar/dns/tcp-framing.js";

/**
 * An upstream DNS server of our own, on loopback only (UDP and TCP on one port). Answers are
 * programmed per (name, type); every query it receives is recorded, so a test can prove that
 * an undeclared name never reached it.
 */
export type Answer = dnsPacket.Answer;

export interface FakeQuery {
  readonly name: string;
  readonly type: string;
  readonly transport: "udp" | "tcp";
  readonly id: number;
}

export interface FakeReply {
  readonly rcode?: "NOERROR" | "NXDOMAIN" | "SERVFAIL" | "REFUSED";
  readonly answers?: readonly Answer[];
  readonly authorities?: readonly Answer[];
  /** Over UDP, answer with TC set and no records (the client must retry over TCP). */
  readonly truncateUdp?: boolean;
  /** Stay silent. */
  readonly drop?: boolean;
  readonly delayMs?: number;
  /** Datagrams sent before the real answer over UDP (spoof attempts); built from the query. */
  readonly before?: (query: dnsPacket.DecodedPacket) => Buffer[];
}

type Programmed = FakeReply | ((q: FakeQuery) => FakeReply);

const RCODES = { NOERROR: 0, NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 } as const;

export class FakeDnsServer {
  readonly queries: FakeQuery[] = [];
  private readonly table = new Map<string, Programmed>();
  private fallback: Programmed = { rcode: "NXDOMAIN" };
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly host: string,
    readonly port: number,
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
  ) {}

  static async start(host = "127.0.0.1"): Promise<FakeDnsServer> {
    if (!host.startsWith("127.")) throw new Error("FakeDnsServer binds loopback only");
    for (let i = 0; i < 20; i++) {
      const udp = createSocket("udp4");
      const port = await new Promise<number>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(0, host, () => resolve(udp.address().port));
      });
      const tcp = createServer();
      const ok = await new Promise<boolean>((resolve) => {
        tcp.once("error", () => resolve(false));
        tcp.listen(port, host, () => resolve(true));
      });
      if (!ok) {
        udp.close();
        continue;
      }
      const server = new FakeDnsServer(host, port, udp, tcp);
      server.wire();
      return server;
    }
    throw new Error("FakeDnsServer: no free port");
  }

  /** "host:port", for UpstreamDnsClient and the like. */
  get server(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  set(name: string, type: string, reply: Programmed): this {
    this.table.set(`${name.toLowerCase()}|${type}`, reply);
    return this;
  }

  setA(name: string, ips: readonly string[], ttl = 300): this {
    return this.set(name, "A", { answers: ips.map((data) => ({ type: "A", name, ttl, data })) });
  }

  setDefault(reply: Programmed): this {
    this.fallback = reply;
    return this;
  }

  queriesFor(name: string): FakeQuery[] {
    const n = name.toLowerCase();
    return this.queries.filter((q) => q.name.toLowerCase() === n || q.name.toLowerCase().endsWith(`.${n}`));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.udp.close(() => resolve()));
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
  }

  private wire(): void {
    this.udp.on("message", (msg, rinfo) => {
      void this.answer(msg, "udp").then((out) => {
        for (const buf of out) this.udp.send(buf, rinfo.port, rinfo.address);
      });
    });
    this.tcp.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => undefined);
      const reader = new LengthPrefixedReader(65_535);
      socket.on("data", (chunk: Buffer) => {
        for (const frame of reader.push(chunk)) {
          void this.answer(frame, "tcp").then((out) => {
            for (const buf of out) if (!socket.destroyed) socket.write(frameMessage(buf));
          });
        }
      });
    });
  }

  private async answer(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer[]> {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return [];
    }
    const question = query.questions?.[0];
    if (question === undefined) return [];
    const type = String(question.type).replace(/^UNKNOWN_65$/, "HTTPS").replace(/^UNKNOWN_64$/, "SVCB");
    const seen: FakeQuery = { name: question.name, type, transport, id: query.id ?? 0 };
    this.queries.push(seen);
    const programmed = this.table.get(`${question.name.toLowerCase()}|${type}`) ?? this.fallback;
    const reply = typeof programmed === "function" ? programmed(seen) : programmed;
    if (reply.delayMs !== undefined) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (reply.drop === true) return [];
    const truncated = transport === "udp" && reply.truncateUdp === true;
    const response = dnsPacket.encode({
      type: "response",
      id: query.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) | RCODES[reply.rcode ?? "NOERROR"],
      questions: [question],
      answers: truncated ? [] : [...(reply.answers ?? [])],
      authorities: truncated ? [] : [...(reply.authorities ?? [])],
    });
    return [...(transport === "udp" ? (reply.before?.(query) ?? []) : []), response];
  }
}
