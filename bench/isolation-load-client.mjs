// The in-sandbox load client of bench/isolation.ts (the same file under runc and under gVisor).
// One JSON command per line on stdin:
//   {"url":"https://upstream.bench.test/","ca":"-----BEGIN...","concurrency":4,"durationMs":3000,"warmupMs":500}
// runs keep-alive GETs (HTTP or HTTPS, trusting `ca`), and prints one JSON result per line.
import http from "node:http";
import https from "node:https";
import process from "node:process";
import readline from "node:readline";

async function load({ url, ca, concurrency, durationMs }) {
  const tls = url.startsWith("https:");
  const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: concurrency, ca }) : new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const get = tls ? https.get : http.get;
  const latencies = [];
  let errors = 0;
  let firstError;
  const deadline = Date.now() + durationMs;
  const one = () =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = get(url, { agent }, (res) => {
        res.resume();
        res.once("end", () => {
          if (res.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          else {
            errors++;
            firstError ??= `HTTP ${res.statusCode}`;
          }
          resolve();
        });
      });
      req.once("error", (err) => {
        errors++;
        firstError ??= err.code ?? err.message;
        resolve();
      });
    });
  const worker = async () => {
    while (Date.now() < deadline) await one();
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  const n = sorted.length;
  const pct = (p) => (n === 0 ? null : sorted[Math.min(n - 1, Math.floor(p * n))]);
  return { requests: n, errors, firstError, rps: n / secs, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    return;
  }
  if (command.ping) return void process.stdout.write(`${JSON.stringify({ id: command.id, pong: true })}\n`);
  if (command.warmupMs > 0) await load({ ...command, durationMs: command.warmupMs });
  const result = await load(command);
  process.stdout.write(`${JSON.stringify({ id: command.id, ...result })}\n`);
}).on("close", () => process.exit(0));
