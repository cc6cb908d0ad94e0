import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { Sandbox } from "../../src/runtime/sandbox.js";
import type { SandboxEvent } from "../../src/runtime/sandbox-events.js";
import type { StartedSandbox } from "../../src/runtime/started-sandbox.js";
import { AttackerSession, DockerTestEnv, FIXTURES_IMAGE, waitFor } from "./support/docker-test-env.js";

const ATTACKER = { id: FIXTURES_IMAGE, entrypoint: ["node", "/fixtures/attacker.mjs"] };
const ZERO_CAPS = "0000000000000000";

let env: DockerTestEnv;
let sandboxes: Sandbox;
let box: StartedSandbox;
let attacker: AttackerSession;
const events: SandboxEvent[] = [];
const logs: string[] = [];
let stderrSeen = "";

beforeAll(async () => {
  env = await DockerTestEnv.create();
  const logger = createLogger({ name: "test", level: "debug", destination: { write: (line: string) => void logs.push(line) } });
  sandboxes = new Sandbox({ engine: env.engine, logger });
  const { policy, file } = await env.policy(`hard-${env.run}`, {
    server: { image: { ref: FIXTURES_IMAGE }, resources: { memory: "96m", cpus: 0.25, pids: 64 }, env: { PLAIN: "visible" }, secrets: ["HANGAR_TEST_TOKEN"] },
  });
  box = await sandboxes.start({
    policy,
    policyFile: file,
    runtime: await env.runtimeConfig(),
    image: ATTACKER,
    run: env.run,
    stateDir: await env.stateRoot(),
    secretSource: { HANGAR_TEST_TOKEN: "s3cret-value" },
    onEvent: (e) => events.push(e),
  });
  attacker = new AttackerSession(box.stdin, box.stdout);
  box.stderr.on("data", (c: Buffer) => (stderrSeen += c.toString("utf8")));
}, 600_000);

afterAll(async () => {
  await box?.stop();
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe("server container hardening, seen from inside", () => {
  it("runs as uid 10001 with every capability set empty and no-new-privileges", async () => {
    const r = await attacker.send({ op: "whoami" });
    expect(r.uid).toBe(10001);
    expect(r.gid).toBe(10001);
    const status = r["status"] as Record<string, string>;
    for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) expect(status[set], set).toBe(ZERO_CAPS);
    expect(status["NoNewPrivs"]).toBe("1");
  });

  it("has a read-only root filesystem and a writable /tmp", async () => {
    expect(await attacker.send({ op: "write", path: "/pwned" })).toMatchObject({ ok: false, error: "EROFS" });
    expect(await attacker.send({ op: "write", path: "/app/pwned" })).toMatchObject({ ok: false });
    expect(await attacker.send({ op: "write", path: "/tmp/scratch" })).toMatchObject({ ok: true });
  });

  it("is held to the policy's memory, cpu and pids limits, without swap on top", async () => {
    // The CPU quota comes after the start-up boost (runtime.startCpuBoostMs); start-gate.test.ts shows the boost itself.
    await box.cpuLimited;
    const r = await attacker.send({ op: "limits" });
    expect(Number(r["memory"])).toBe(96 * 1024 * 1024);
    if (r["memsw"] !== null) expect(Number(r["memsw"])).toBe(96 * 1024 * 1024);
    expect(r["pids"]).toBe("64");
    // cgroup v1: quota/period; v2: "quota period".
    const quota = String(r["cpuQuota"]).split(" ")[0];
    const period = Number(r["cpuPeriod"] ?? String(r["cpuQuota"]).split(" ")[1]);
    expect(Number(quota) / period).toBeCloseTo(0.25, 5);
  });

  it("gets plain env and secrets as values, and the sidecar as its proxy", async () => {
    expect(await attacker.send({ op: "env", name: "PLAIN" })).toMatchObject({ value: "visible" });
    expect(await attacker.send({ op: "env", name: "HANGAR_TEST_TOKEN" })).toMatchObject({ value: "s3cret-value" });
    expect(await attacker.send({ op: "env", name: "HTTPS_PROXY" })).toMatchObject({ value: `http://${box.sidecarAddress}:3128` });
  });
});

describe("sidecar container hardening, seen from the host's /proc", () => {
  it("runs as 10001 without capabilities, read-only, and neither forwards nor speaks IPv6", async () => {
    const pid = (await env.engine.inspectContainer(box.sidecarId))?.pid;
    expect(pid).toBeGreaterThan(0);
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(/^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
    for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) expect(status).toMatch(new RegExp(`^${set}:\\s+${ZERO_CAPS}$`, "m"));
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    // Net sysctls read as the reader's namespace sees them: read them from inside the sidecar's.
    const sysctl = (name: string) => run("nsenter", ["-t", String(pid), "-n", "cat", `/proc/sys/net/${name}`]).then((s) => s.trim());
    expect(await sysctl("ipv4/ip_forward")).toBe("0");
    expect(await sysctl("ipv4/ip_unprivileged_port_start")).toBe("0");
    expect(await sysctl("ipv6/conf/all/disable_ipv6")).toBe("1");
    const root = (await readFile(`/proc/${pid}/mountinfo`, "utf8")).split("\n").find((l) => l.split(" ")[4] === "/");
    expect(root?.split(" ")[5]?.split(",")).toContain("ro");
  });
});

describe("sandbox network", () => {
  it("is internal, IPv4-only, and the host has no address on its bridge", async () => {
    const net = await env.engine.inspectNetwork(box.network.id);
    expect(net).toMatchObject({ internal: true, ipv6: false });
    expect(net!.driverOptions["com.docker.network.bridge.inhibit_ipv4"]).toBe("true");
    const bridge = `br-${box.network.id.slice(0, 12)}`;
    // /proc/net/fib_trie lists every local IPv4 address; the gateway address must not be one.
    const fib = await readFile("/proc/net/fib_trie", "utf8");
    expect(fib).not.toContain(box.network.gateway);
    const addresses = await hostAddressesOn(bridge);
    expect(addresses).toEqual([]);
  });

  it("puts the sidecar on the sandbox and egress networks, at its fixed address, with forwarding off", async () => {
    const sidecar = await env.engine.inspectContainer(box.sidecarId);
    expect(sidecar?.addresses[box.network.name]).toBe(box.network.sidecar);
    expect(Object.keys(sidecar!.addresses).sort()).toEqual([box.egressNetwork, box.network.name].sort());
    const server = await env.engine.inspectContainer(box.serverId);
    expect(Object.keys(server!.addresses)).toEqual([box.network.name]);
  });

  it("reports the sidecar's readiness and its own start in the event stream", () => {
    const started = events.findIndex((e) => e.type === "lifecycle" && e.action === "started");
    const sandboxStarted = events.findIndex((e) => e.type === "runtime" && e.action === "sandbox-started");
    expect(started).toBeGreaterThanOrEqual(0);
    expect(sandboxStarted).toBeGreaterThan(started);
    expect(events.every((e) => e.server === box.server)).toBe(true);
  });

  it("never logs a secret value", () => {
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join("\n")).not.toContain("s3cret-value");
  });

  it("hands the server's stdio over as Node streams (stderr apart from stdout)", async () => {
    const stderr = await waitFor(async () => (stderrSeen.includes("attacker ready") ? stderrSeen : undefined));
    expect(stderr).toContain("attacker ready");
  });
});

describe("stop", () => {
  it("is idempotent and removes the sandbox's containers and network", async () => {
    const second = await sandboxesStartExtra();
    await Promise.all([second.stop(), second.stop()]);
    await second.stop();
    expect(await env.engine.inspectContainer(second.serverId)).toBeUndefined();
    expect(await env.engine.inspectContainer(second.sidecarId)).toBeUndefined();
    expect(await env.engine.inspectNetwork(second.network.id)).toBeUndefined();
  }, 60_000);

  it("ends the server when its stdin closes", async () => {
    const third = await sandboxesStartExtra("eof");
    third.stdin.end();
    expect(await third.serverExit).toBe(0);
    await third.stop();
  }, 60_000);
});

async function sandboxesStartExtra(suffix = "x"): Promise<StartedSandbox> {
  const { policy, file } = await env.policy(`hard-${suffix}-${env.run}`);
  return sandboxes.start({ policy, policyFile: file, runtime: await env.runtimeConfig(), image: ATTACKER, run: env.run, stateDir: await env.stateRoot() });
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(file, args, (err, stdout) => (err ? reject(err) : resolve(stdout))));
}

async function hostAddressesOn(device: string): Promise<string[]> {
  const out = await run("ip", ["-4", "-o", "addr", "show", "dev", device]);
  return out.split("\n").filter((l) => l.includes("inet "));
}
