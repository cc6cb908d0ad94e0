// The in-container load client of bench/sandbox.ts. The same file runs in a plain container
// on the egress network (direct) and as the server of a sandbox (through the sidecar's
// transparent path). It reads one JSON command per line on stdin:
//   {"id":1,"url":"http://upstream.bench.test:8080/","concurrency":8,"durationMs":5000,"warmupMs":1000}
// runs keep-alive GETs, and prints one JSON result per line on stdout.
import http from "node:http";
import process from "node:process";
import readline from "node:readline";

const MAX_SAMPLES = 2_000_000;

async function load({ url, concurrency, durationMs }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = new Float64Array(MAX_SAMPLES);
  let n = 0;
  let errors = 0;
  let firstError;
  const deadline = Date.now() + durationMs;
  const one = () =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.once("end", () => {
          if (res.statusCode === 200 && n < MAX_SAMPLES) latencies[n++] = Number(process.hrtime.bigint() - t0) / 1e6;
          else if (res.statusCode !== 200) {
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
  const sorted = latencies.subarray(0, n).sort();
  const pct = (p) => (n === 0 ? null : sorted[Math.min(n - 1, Math.floor(p * n))]);
  return { requests: n, errors, firstError, rps: n / secs, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: n === 0 ? null : sorted[n - 1] };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    return;
  }
  const warmup = command.warmupMs > 0 ? await load({ ...command, durationMs: command.warmupMs }) : { requests: 0 };
  const result = await load(command);
  process.stdout.write(`${JSON.stringify({ id: command.id, ...result, warmupRequests: warmup.requests })}\n`);
});
rl.on("close", () => process.exit(0));
process.stderr.write("load client ready\n");
