import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import https from "node:https";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import { makeTestPki, type TestPki } from "../support/tls.js";
import { DockerTestEnv, ROOT, upstreamCount, waitFor, type RunningFixture } from "./support/docker-test-env.js";
import { ensureCliSidecarImage, writeRunConfig } from "./support/hangar-cli.js";
import { HangarRunSession } from "./support/hangar-run-session.js";

/**
 * The transparent path over TLS, through the real `hangar run`: server-everything fetches
 * https://tls.allowed.test with Node's fetch (no proxy), trusting a CA generated here and
 * handed to it the way a user would: NODE_EXTRA_CA_CERTS pointing at a read-only mount
 * declared in the policy. The sidecar routes by SNI and splices; it never sees the plaintext.
 */

const TLS_HOST = "tls.allowed.test";
type ContentItem = { type: string; text?: string; resource?: { blob?: string } };

let env: DockerTestEnv;
let pki: TestPki;
let upstream: RunningFixture;
let session: HangarRunSession;
let eventsFile: string;

/** A policy of our own around the package policies/everything.yaml pins. */
async function writeTlsPolicy(file: string, certsDir: string): Promise<void> {
  const everything = parse(await readFile(join(ROOT, "policies/everything.yaml"), "utf8")) as { server: { npm: unknown; args: string[] } };
  const policy = {
    version: 1,
    // A fixed name: the server image (tagged by name and content) is built once and reused.
    name: "everything-tls",
    server: {
      npm: everything.server.npm,
      args: everything.server.args,
      env: { NODE_EXTRA_CA_CERTS: "/certs/ca.pem" },
      mounts: [{ source: certsDir, target: "/certs", readOnly: true }],
    },
    egress: { mode: "enforcing", allow: [{ host: TLS_HOST, ports: [443] }] },
  };
  await writeFile(file, stringify(policy));
}

/** GET over HTTPS from the host, trusting only `ca`. */
function httpsGet(ip: string, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: ip, port: 443, path: "/from-host", servername, ca, agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.once("timeout", () => req.destroy(new Error("timeout")));
    req.once("error", reject);
  });
}

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const sidecarImage = await ensureCliSidecarImage(env.engine);
  pki = await makeTestPki([TLS_HOST]);
  upstream = await env.runFixture("upstream.mjs", {
    name: "tls",
    env: { NAME: TLS_HOST, PORT: "443", TLS_CERT: pki.cert, TLS_KEY: pki.key },
    sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
    aliases: [TLS_HOST],
  });
  await waitFor(async () => (await upstreamCount(upstream.ip)) === 0 || undefined);

  const state = await env.stateRoot();
  // The server runs as uid 10001: the folder and the CA must be readable by it.
  const certsDir = join(state, "certs");
  await mkdir(certsDir);
  await chmod(certsDir, 0o755);
  await writeFile(join(certsDir, "ca.pem"), pki.caCert, { mode: 0o644 });
  const policy = join(state, "everything-tls.yaml");
  await writeTlsPolicy(policy, certsDir);
  const config = await writeRunConfig(join(state, "hangar.yaml"), { egress: await env.egressNetwork(), sidecarImage });
  eventsFile = join(state, "events.jsonl");
  session = await HangarRunSession.start({ engine: env.engine, policy, config, events: eventsFile });
}, 600_000);

afterAll(async () => {
  await session?.[Symbol.asyncDispose]();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("hangar run with a declared HTTPS upstream of ours and a test CA (NODE_EXTRA_CA_CERTS)", () => {
  it("the upstream serves HTTPS with a certificate of the test CA (checked from the host)", async () => {
    expect(await httpsGet(upstream.ip, TLS_HOST, pki.caCert)).toBe(`hello from ${TLS_HOST}\n`);
  });

  it("gzip-file-as-resource fetches https://tls.allowed.test through the transparent path, routed by SNI", async () => {
    const before = await upstreamCount(upstream.ip);
    const result = await session.client.callTool({
      name: "gzip-file-as-resource",
      arguments: { name: "secure.txt.gz", data: `https://${TLS_HOST}/secure.txt`, outputType: "resource" },
    });
    expect(result.isError, JSON.stringify(result.content)).not.toBe(true);
    const blob = (result.content as ContentItem[])[0]?.resource?.blob;
    expect(gunzipSync(Buffer.from(blob ?? "", "base64")).toString("utf8")).toBe(`hello from ${TLS_HOST}\n`);
    expect(await upstreamCount(upstream.ip)).toBe(before + 1);
    // It arrived over TLS, with the name the server asked for.
    const { seen } = (await (await fetch(`http://${upstream.ip}:8080/__count`)).json()) as { seen: Array<Record<string, unknown>> };
    expect(seen.at(-1)).toMatchObject({ host: TLS_HOST, url: "/secure.txt", tls: true });

    // The decision; its `close` comes when the keep-alive connection idles out, seconds later.
    const decided = await waitFor(async () => {
      const all = (await readFile(eventsFile, "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as SandboxEvent);
      return all.find((e) => e.type === "egress" && e.phase === "decide" && e.name === TLS_HOST);
    });
    expect(decided).toMatchObject({ verdict: "allow", port: 443, path: "transparent", protocol: "tls", sni: TLS_HOST, ip: upstream.ip });
  });

  it("the client's close ends the run and removes its sandbox", async () => {
    expect((await session.remaining()).length).toBeGreaterThanOrEqual(3);
    await session.client.close();
    expect((await session.waitForExit(30_000)).code).toBe(0);
    expect(await session.remaining()).toEqual([]);
  });
});
