/** Load generators for the side-by-side benchmarks. Loopback only, bounded in time and count. */
import http from "node:http";
import net from "node:net";
import tls from "node:tls";

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Reads one TLS stream to its end; returns MB/s. `via` picks direct, transparent or CONNECT. */
export async function tlsThroughput(options: {
  target: Endpoint; // where the TCP connection goes (upstream, transparent listener or proxy)
  servername: string;
  ca: string;
  connectAuthority?: string; // set → speak CONNECT to `target` first
}): Promise<{ mbPerSec: number; bytes: number }> {
  const raw = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(options.target.port, options.target.host);
    s.once("error", reject);
    s.once("connect", () => resolve(s));
  });
  if (options.connectAuthority !== undefined) {
    raw.write(`CONNECT ${options.connectAuthority} HTTP/1.1\r\nHost: ${options.connectAuthority}\r\n\r\n`);
    await new Promise<void>((resolve, reject) => {
      let head = "";
      const onData = (d: Buffer): void => {
        head += d.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        raw.off("data", onData);
        if (/^HTTP\/1\.[01] 200/.test(head)) resolve();
        else reject(new Error(`CONNECT refused: ${head.split("\r\n")[0]}`));
      };
      raw.on("data", onData);
    });
  }
  const started = process.hrtime.bigint();
  const socket = tls.connect({ socket: raw, servername: options.servername, ca: options.ca });
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on("data", (d: Buffer) => (bytes += d.length));
    socket.once("end", () => resolve());
    socket.once("error", reject);
  });
  socket.destroy();
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  return { mbPerSec: bytes / 1e6 / secs, bytes };
}

export interface RpsResult {
  readonly rps: number;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

/** Keep-alive GETs from `concurrency` workers for `durationMs`. `proxy` set → absolute-form via the proxy. */
export async function httpRps(options: {
  target: Endpoint;
  hostHeader: string;
  proxy?: Endpoint;
  concurrency: number;
  durationMs: number;
}): Promise<RpsResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const via = options.proxy ?? options.target;
  const path = options.proxy ? `http://${options.hostHeader}:${options.target.port}/` : "/";
  const latencies: number[] = [];
  let errors = 0;
  const deadline = Date.now() + options.durationMs;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = http.request(
        { host: via.host, port: via.port, path, agent, headers: { host: `${options.hostHeader}:${options.target.port}` } },
        (res) => {
          res.resume();
          res.once("end", () => {
            if (res.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            else errors++;
            resolve();
          });
        },
      );
      req.once("error", () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) await one();
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const secs = (Date.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / secs, requests: latencies.length, p50Ms: pct(0.5), p99Ms: pct(0.99), errors };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}
