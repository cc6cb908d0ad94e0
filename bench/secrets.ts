/**
 * What watching secrets and credential shapes costs, and how often it cries wolf. Side by side
 * in one run, on loopback:
 *   - latency: sequential POSTs (headers + a JSON body) on one warm keep-alive connection over
 *     inspected TLS, through a sidecar that scans (three secrets: one injected, two watched;
 *     credential shapes on) and through one that inspects without scanning (no secrets,
 *     `credentialScan: false`). Added p50/p99 and the sidecar's CPU per request, from /proc.
 *   - in-process: microseconds per request of the pure scan (core/secrets) by body size.
 *   - false positives: the share of a benign corpus (JSON with ids, UUIDs, hashes, timestamps,
 *     base64 images, ordinary headers) flagged as a leak or a credential, and, as a check
 *     that the scan is awake, the share of planted credentials it finds.
 *
 *   node --import tsx bench/secrets.ts [--quick] [--rounds N] [--json out.json] [--sidecar path/to/main.js]
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import https from "node:https";
import { loadavg } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { checkRequestSecrets, type RequestSecretsInput } from "../src/core/secrets/request-secrets.js";
import { compileSecretWatch, newSentinel, type SecretMaterial } from "../src/core/secrets/secret-watch.js";
import { createSandboxCa } from "../src/sidecar/proxy/tls/sandbox-ca.js";
import { measureCpu } from "./cpu.js";
import { median } from "./load.js";
import { buildSidecar, progress, Rig } from "./rig.js";

const { values: flags } = parseArgs({ options: { quick: { type: "boolean" }, rounds: { type: "string" }, json: { type: "string" }, sidecar: { type: "string" } } });
const quick = flags.quick === true;
const ROUNDS = flags.rounds !== undefined ? Math.max(1, Number(flags.rounds)) : quick ? 1 : 3;
const REQUESTS = quick ? 400 : 1500;
const CORPUS = quick ? 2000 : 10000;
const NAME = "inspect.bench.test";

/** Deterministic, so two runs judge the same corpus. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(11);
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const uuid = (): string => {
  const h = bytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};
const word = (): string => pick(["alpha", "order", "invoice", "customer", "report", "shipment", "draft", "note", "meeting", "ticket"]);

/** One ordinary API request: what a mail, CRM or storage client sends all day. */
function benignRequest(i: number): RequestSecretsInput {
  const kind = i % 5;
  const headers = [
    "Host", NAME,
    "User-Agent", pick(["node-fetch/1.0", "axios/1.7.2", "python-requests/2.32.3", "curl/8.5.0"]),
    "Accept", "application/json",
    "Content-Type", kind === 4 ? "multipart/form-data; boundary=----x" : "application/json",
    "X-Request-Id", uuid(),
    "If-None-Match", `"${createHash("sha1").update(bytes(8)).digest("hex")}"`,
  ];
  const id = Math.floor(rand() * 1e9);
  const body =
    kind === 0
      ? { id, customerId: uuid(), items: Array.from({ length: 1 + Math.floor(rand() * 5) }, () => ({ sku: `SKU-${Math.floor(rand() * 1e6)}`, qty: 1 + Math.floor(rand() * 9) })), createdAt: new Date(1.7e12 + rand() * 1e10).toISOString() }
      : kind === 1
        ? { file: `${word()}.txt`, sha256: createHash("sha256").update(bytes(32)).digest("hex"), md5: createHash("md5").update(bytes(8)).digest("hex"), size: Math.floor(rand() * 1e7) }
        : kind === 2
          ? { name: `${word()}.png`, contentType: "image/png", data: Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), bytes(2048 + Math.floor(rand() * 30000))]).toString("base64") }
          : kind === 3
            ? { To: `${word()}@example.com`, Subject: `Your ${word()} ${id}`, HtmlBody: `<p>Hello ${word()}, see https://example.com/${word()}/${uuid()}?ref=${id}</p>`, Tag: word(), MessageStream: "outbound" }
            : { avatar: `data:image/jpeg;base64,${Buffer.concat([Buffer.from("ffd8ffe0", "hex"), bytes(4096)]).toString("base64")}`, userId: uuid() };
  const target = `/v1/${word()}s/${uuid()}?page=${1 + Math.floor(rand() * 20)}&cursor=${bytes(12).toString("base64url")}`;
  return { host: NAME, inspected: true, rawHeaders: headers, target, body: Buffer.from(JSON.stringify(body)), credentials: true };
}

// Made-up shapes (built here so no scanner flags this file): the scan must find each.
const PLANTED = [
  `AKIA${"ABCDEFGH".slice(0, 4)}${"2345672345672345".slice(0, 12)}`,
  `ghp_${"x1Y2z3".repeat(6)}`,
  `xoxb-${"1234567890"}-${"abcdefghijkl"}`,
  `sk_live_${"a1B2c3D4".repeat(3)}`,
  `-----BEGIN ${"OPENSSH"} PRIVATE KEY-----`,
  `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString("base64url")}.${Buffer.from('{"sub":"42","iat":1700000000}').toString("base64url")}.${"s1gn4tur3".repeat(3)}`,
];

const SECRETS: SecretMaterial[] = [
  { name: "API_TOKEN", value: "bench-api-token-0123456789abcdef", sentinel: newSentinel((n) => bytes(n)), inject: { host: NAME, header: "X-Api-Token" } },
  { name: "LEGACY_TOKEN", value: "bench-legacy-value-fedcba9876543210" },
  { name: "OPS_KEY", value: "bench-ops-key-5555aaaa6666bbbb" },
];

function falsePositives(): { corpus: number; flagged: number; rate: number; byDetector: Record<string, number>; plantedFound: number; planted: number } {
  const watch = compileSecretWatch(SECRETS);
  const byDetector: Record<string, number> = {};
  let flagged = 0;
  for (let i = 0; i < CORPUS; i++) {
    const r = checkRequestSecrets(watch, benignRequest(i));
    if (r.leaks.length > 0 || r.credentials.length > 0) flagged++;
    for (const d of [...r.credentials, ...r.leaks.map((l) => `leak:${l.name}`)]) byDetector[d] = (byDetector[d] ?? 0) + 1;
  }
  let plantedFound = 0;
  for (const [i, planted] of PLANTED.entries()) {
    const req = benignRequest(i);
    const body = JSON.parse(req.body!.toString()) as Record<string, unknown>;
    const r = checkRequestSecrets(watch, { ...req, body: Buffer.from(JSON.stringify({ ...body, note: planted })) });
    if (r.credentials.length > 0) plantedFound++;
  }
  return { corpus: CORPUS, flagged, rate: flagged / CORPUS, byDetector, plantedFound, planted: PLANTED.length };
}

/** Microseconds per call of the pure scan, by body size. */
function inProcess(): Record<string, number> {
  const watch = compileSecretWatch(SECRETS);
  const out: Record<string, number> = {};
  for (const size of [1024, 64 * 1024, 1024 * 1024]) {
    const json = JSON.stringify({ id: uuid(), data: bytes(Math.floor((size * 3) / 4)).toString("base64") }).slice(0, size);
    const req: RequestSecretsInput = { ...benignRequest(0), body: Buffer.from(json) };
    const n = size >= 1024 * 1024 ? 20 : size >= 65536 ? 200 : 5000;
    for (let i = 0; i < Math.min(n, 50); i++) checkRequestSecrets(watch, req);
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) checkRequestSecrets(watch, req);
    out[`${size / 1024}KiB`] = Number(process.hrtime.bigint() - started) / 1e3 / n;
  }
  return out;
}

interface Target {
  readonly port: number;
  readonly ca: string;
}

/** Sequential POSTs on one warm keep-alive connection: latency in ms, per request. */
async function latencies(t: Target, n: number, sentinel: string): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: t.ca });
  const body = JSON.stringify({ To: "someone@example.com", Subject: "Order 1234 shipped", HtmlBody: "<p>Hello, your order is on its way.</p>".repeat(40), items: Array.from({ length: 20 }, (_, i) => ({ id: `0b5c7a1e-8f7e-4c1a-9b7e-5a1c2d3e4f${String(i).padStart(2, "0")}`, qty: i })) });
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = https.request(
        { host: "127.0.0.1", port: t.port, method: "POST", servername: NAME, path: "/v1/email?page=2", agent, headers: { host: NAME, "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-api-token": sentinel, "user-agent": "bench/1.0", accept: "application/json" } },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode} ${String(res.headers["x-hangar-reasons"] ?? "")}`));
          res.resume();
          res.once("end", () => resolve(Number(process.hrtime.bigint() - started) / 1e6));
        },
      );
      req.once("error", reject);
      req.end(body);
    });
  try {
    for (let i = 0; i < 50; i++) await one();
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await one());
    return out;
  } finally {
    agent.destroy();
  }
}

const pct = (xs: readonly number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  progress(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}; false positives on ${CORPUS} benign requests`);
  const fp = falsePositives();
  const scanUs = inProcess();
  const rig = await Rig.start({ streamBytes: 1024 });
  try {
    const ca = await createSandboxCa({ name: "bench", now: Date.now() });
    const files = { cert: join(rig.dir, "ca.crt"), key: join(rig.dir, "ca.key"), upstream: join(rig.dir, "upstream-ca.pem") };
    await writeFile(files.cert, ca.certPem);
    await writeFile(files.key, ca.keyPem, { mode: 0o600 });
    await writeFile(files.upstream, rig.upstreams.caCert);
    const main = flags.sidecar !== undefined ? resolvePath(flags.sidecar) : await buildSidecar();
    const tls = { ca: { certFile: files.cert, keyFile: files.key }, upstreamCaFile: files.upstream };
    const plain = await rig.sidecar({ main, discardEvents: true, freePorts: true, config: { tls, credentialScan: false } });
    const scanning = await rig.sidecar({ main, discardEvents: true, freePorts: true, config: { tls, secrets: "stdin" }, stdinLine: JSON.stringify({ secrets: SECRETS }) });
    const port = rig.upstreams.httpsPort;
    const targets = { plain: { port: plain.transparent.get(port)!, ca: ca.certPem }, scanning: { port: scanning.transparent.get(port)!, ca: ca.certPem } };
    const pids = { plain: plain.pid, scanning: scanning.pid };
    const keys = ["plain", "scanning"] as const;
    const runs: Record<(typeof keys)[number], { p50: number; p99: number; cpuUs: number }[]> = { plain: [], scanning: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? keys : ([...keys].reverse() as unknown as typeof keys);
      progress(`round ${round + 1}/${ROUNDS}: ${REQUESTS} warm POSTs through each sidecar`);
      for (const k of order) {
        const l = await measureCpu(pids, () => latencies(targets[k], REQUESTS, SECRETS[0]!.sentinel!));
        runs[k].push({ p50: pct(l.result, 0.5), p99: pct(l.result, 0.99), cpuUs: ((l.cpu.ms[k] ?? 0) * 1000) / (REQUESTS + 50) });
      }
    }
    const m = (k: (typeof keys)[number], f: "p50" | "p99" | "cpuUs"): number => median(runs[k].map((r) => r[f]));
    const result = {
      latency: {
        inspectedP50Ms: m("plain", "p50"),
        scanningP50Ms: m("scanning", "p50"),
        addedP50Ms: m("scanning", "p50") - m("plain", "p50"),
        inspectedP99Ms: m("plain", "p99"),
        scanningP99Ms: m("scanning", "p99"),
        addedP99Ms: m("scanning", "p99") - m("plain", "p99"),
        sidecarCpuUsPerRequest: { inspected: m("plain", "cpuUs"), scanning: m("scanning", "cpuUs"), added: m("scanning", "cpuUs") - m("plain", "cpuUs") },
      },
      scanUsPerRequestInProcess: scanUs,
      falsePositives: fp,
      rounds: ROUNDS,
      load: loadavg(),
    };
    const f = (x: number, d = 3): string => x.toFixed(d);
    console.log(`\nsecret and credential scanning vs inspection alone (${ROUNDS} round(s), medians)`);
    console.log(
      `  warm POST (2.5 KB JSON): p50 ${f(result.latency.inspectedP50Ms)} -> ${f(result.latency.scanningP50Ms)} ms (+${f(result.latency.addedP50Ms)}), ` +
        `p99 ${f(result.latency.inspectedP99Ms)} -> ${f(result.latency.scanningP99Ms)} ms (+${f(result.latency.addedP99Ms)}); ` +
        `sidecar CPU ${f(result.latency.sidecarCpuUsPerRequest.inspected, 0)} -> ${f(result.latency.sidecarCpuUsPerRequest.scanning, 0)} us/request`,
    );
    console.log(`  pure scan in-process: ${Object.entries(scanUs).map(([k, v]) => `${k} ${f(v, 1)} us`).join(", ")}`);
    console.log(
      `  false positives: ${fp.flagged}/${fp.corpus} benign requests = ${(fp.rate * 100).toFixed(3)}% ${JSON.stringify(fp.byDetector)}; planted credentials found ${fp.plantedFound}/${fp.planted}`,
    );
    if (flags.json !== undefined) await writeFile(flags.json, JSON.stringify(result, null, 2));
  } finally {
    await rig.close();
  }
}

await main();
