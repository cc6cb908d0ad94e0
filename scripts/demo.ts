/**
 * The README's demo: sandbox @modelcontextprotocol/server-everything with `hangar run`,
 * drive it with the MCP SDK's stdio client, and have its gzip-file-as-resource tool (which
 * fetches with Node's fetch, ignoring HTTP_PROXY) reach one upstream of ours that the policy
 * declares, then one that it does not. Both upstreams are containers of ours.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import Dockerode from "dockerode";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { DockerContainerEngine } from "../src/docker/docker-container-engine.js";
import { egressNetworkSpec } from "../src/runtime/sandbox-specs.js";
import { startDemoUpstreams } from "../src/cli/demo-upstreams.js";
import { BaseImageBuilder } from "../src/images/base-image-builder.js";
import type { EgressEvent } from "../src/core/events.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const EGRESS = "hangar-egress";
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string): void => console.log(`\n${bold(`== ${s}`)}`);

async function main(): Promise<number> {
  const engine = new DockerContainerEngine(new Dockerode());
  await engine.ping();
  const dir = await mkdtemp(join(tmpdir(), "hangar-demo-"));
  // The upstreams are built on the base image, so it must exist before them (hangar run would build it only later).
  step("the base image (imported from this machine's own node binary, never pulled)");
  const base = await new BaseImageBuilder(engine, ROOT).ensure({ onProgress: (p) => console.log(`  ${p.phase.padEnd(5)} ${p.message}`) });
  console.log(`${base.ref} ${base.reused ? "already built" : "built"}`);
  step(`starting two upstreams of ours on the ${EGRESS} network`);
  const existing = await engine.inspectNetwork(EGRESS);
  const network = existing ?? (await engine.createNetwork(egressNetworkSpec(EGRESS)));
  const subnet = network.subnets[0]?.subnet;
  if (subnet === undefined) throw new Error(`network ${EGRESS} has no IPv4 subnet`);
  const upstreams = await startDemoUpstreams(engine, { network: EGRESS });
  console.log(`api.allowed.test  ${upstreams.allowed.ip}  (declared in policies/everything.yaml)`);
  console.log(`evil.test         ${upstreams.evil.ip}  (not declared)`);

  // The upstreams sit on a private Docker subnet; the operator vouches for it, as a company would for an internal API.
  const config = join(dir, "hangar.yaml");
  await writeFile(config, `runtime:\n  egressNetwork: ${EGRESS}\n  trustedUpstreamRanges: ["${subnet}"]\n`);
  const eventsFile = join(dir, "events.jsonl");

  step("hangar run policies/everything.yaml  (builds images on first use, then starts the sandbox)");
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(ROOT, "dist/cli/main.js"), "run", join(ROOT, "policies/everything.yaml"), "--config", config, "--events", eventsFile],
    cwd: ROOT,
    stderr: "pipe",
    env: { ...(process.env as Record<string, string>) },
  });
  const stderr = transport.stderr;
  if (stderr) createInterface({ input: stderr as unknown as NodeJS.ReadableStream }).on("line", (line) => console.log(`  │ ${line}`));
  const client = new Client({ name: "hangar-demo", version: "1.0.0" });
  let failures = 0;
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    step(`connected over MCP stdio: ${tools.length} tools, including ${tools.some((t) => t.name === "gzip-file-as-resource") ? "gzip-file-as-resource" : "(gzip-file-as-resource missing!)"}`);

    step("calling gzip-file-as-resource on http://api.allowed.test/hello.txt  (declared)");
    const allowed = await client.callTool({ name: "gzip-file-as-resource", arguments: { name: "hello.txt.gz", data: "http://api.allowed.test/hello.txt", outputType: "resource" } });
    const blob = (allowed.content as { type: string; resource?: { blob?: string } }[])[0]?.resource?.blob;
    if (allowed.isError !== true && blob !== undefined) {
      console.log(`ALLOWED: the server fetched it and gzipped it: ${JSON.stringify(gunzipSync(Buffer.from(blob, "base64")).toString().trim())}`);
    } else {
      failures++;
      console.log(`UNEXPECTED: the allowed call failed: ${JSON.stringify(allowed.content)}`);
    }

    step("calling gzip-file-as-resource on http://evil.test/steal  (not declared)");
    const blocked = await client.callTool({ name: "gzip-file-as-resource", arguments: { name: "steal.gz", data: "http://evil.test/steal", outputType: "resource" } }).catch((err: Error) => ({
      isError: true,
      content: [{ type: "text", text: err.message }],
    }));
    if (blocked.isError === true) {
      console.log(`BLOCKED: the tool failed: ${JSON.stringify((blocked.content as { text?: string }[])[0]?.text ?? "").slice(0, 160)}`);
    } else {
      failures++;
      console.log("UNEXPECTED: the undeclared fetch succeeded");
    }
  } finally {
    await client.close().catch(() => undefined);
  }
  // `hangar run` tears the sandbox down when its stdin closes; give it a moment to finish.
  await new Promise((r) => setTimeout(r, 1000));

  step("what the upstreams themselves received");
  const allowedCount = await upstreams.allowed.count();
  const evilCount = await upstreams.evil.count();
  console.log(`api.allowed.test: ${allowedCount} request(s)`);
  console.log(`evil.test:        ${evilCount} request(s)`);
  if (allowedCount < 1 || evilCount !== 0) failures++;

  step(`the sidecar's events (${eventsFile})`);
  const lines = (await readFile(eventsFile, "utf8").catch(() => "")).split("\n").filter(Boolean);
  for (const line of lines) {
    const e = JSON.parse(line) as EgressEvent;
    if (e.type !== "dns" && e.type !== "egress") continue;
    const what = e.type === "dns" ? `dns ${e.recordType ?? ""} ${e.name ?? ""}` : `${e.protocol} ${e.name ?? e.ip ?? ""}:${e.port ?? ""} ${e.phase}`;
    console.log(`${e.verdict.toUpperCase().padEnd(11)} ${what.padEnd(40)} ${e.reasons.join(",")}`);
  }
  await upstreams.stop();
  // Leave the machine as we found it: the egress network goes too if this demo made it.
  if (existing === undefined) await engine.removeNetwork(network.id).catch((err: Error) => console.log(`note: could not remove ${EGRESS}: ${err.message}`));
  await rm(dir, { recursive: true, force: true });
  console.log(failures === 0 ? `\n${bold("demo ok")}: one declared upstream reached, one undeclared upstream blocked and untouched.` : `\n${bold("demo FAILED")} (${failures} unexpected result(s))`);
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main().catch((err: Error) => {
  console.error(`demo: ${err.message}`);
  return 2;
});
// Keep a stray handle from holding the demo open.
setTimeout(() => process.exit(), 3000).unref();
