import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quarantineManifest } from "../../src/cli/commands/approve-quarantine.js";
import { pinManifest } from "../../src/core/gateway/manifest-digest.js";
import { scanManifest } from "../../src/core/gateway/manifest-scan.js";
import { selectorTerms } from "../../src/docker/labels.js";
import { parsePolicyText } from "../../src/policy/parse-policy.js";
import { parseQuarantineTarget, quarantinePolicyText } from "../../src/quarantine/quarantine-target.js";
import { captureIo } from "../cli/capture-io.js";
import { DockerTestEnv, realSidecarSourceExists } from "./support/docker-test-env.js";
import { scenarioDeps } from "./support/replay-services.js";

/**
 * `hangar approve request --quarantine` reads the whole manifest: server-everything from npm,
 * started once in a capture sandbox, shows its prompts, resources and resource templates
 * beside its tools; they are the ones in the benign corpus (test/fixtures/manifests), the
 * scan flags none of them, the pin covers them, and the sandbox is gone afterwards.
 */
const EVERYTHING = "npm:@modelcontextprotocol/server-everything@2026.8.31";
const corpus = JSON.parse(readFileSync(new URL("../fixtures/manifests/server-everything.json", import.meta.url), "utf8")) as {
  prompts: { name: string }[];
  resources: { uri: string }[];
  resourceTemplates: { uriTemplate: string }[];
};

let env: DockerTestEnv;

beforeAll(async () => {
  env = await DockerTestEnv.create();
}, 600_000);

afterAll(async () => {
  await env?.cleanup();
  expect(await env.leftovers()).toEqual([]);
}, 120_000);

describe.runIf(realSidecarSourceExists())("approve request --quarantine: prompts and resources", () => {
  it("server-everything's prompts, resources and templates are listed in quarantine, unflagged, and pinned", async () => {
    const parsed = parseQuarantineTarget(EVERYTHING);
    if (!parsed.ok || parsed.target.kind === "policy") throw new Error(`bad target ${EVERYTHING}`);
    const text = quarantinePolicyText(parsed.target, []);
    const policyFile = join(await env.stateRoot(), "everything-approve.yaml");
    await writeFile(policyFile, text);
    const loaded = parsePolicyText(text, policyFile);
    if (!loaded.ok) throw new Error(`policy invalid: ${JSON.stringify(loaded.issues)}`);
    const deps = await scenarioDeps(env);
    const io = captureIo();
    const seen = await quarantineManifest(loaded.policy, policyFile, "unused-config.yaml", io, { openServices: () => deps.openServices!({ io }) });
    expect(seen, io.stderr()).toBeDefined();
    const manifest = seen!.manifest;
    expect(manifest.tools).toHaveLength(13);
    expect(manifest.prompts.map((p) => p.name)).toEqual(corpus.prompts.map((p) => p.name));
    expect(manifest.resources.map((r) => r.uri)).toEqual(corpus.resources.map((r) => r.uri));
    expect(manifest.resourceTemplates.map((t) => t.uriTemplate)).toEqual(corpus.resourceTemplates.map((t) => t.uriTemplate));
    expect(scanManifest(manifest.tools, { server: loaded.policy.name }, manifest).findings).toEqual([]);
    const pin = pinManifest(manifest.tools, manifest);
    expect(Object.keys(pin.prompts ?? {})).toHaveLength(4);
    expect(Object.keys(pin.resources ?? {})).toHaveLength(7);
    expect(Object.keys(pin.resourceTemplates ?? {})).toHaveLength(2);
    expect(io.stderr()).toMatch(/listed 4 prompts, 7 resources and 2 resource templates/);
    // Nothing of the quarantine run is left.
    expect(await env.engine.listContainers({ labels: selectorTerms({ server: loaded.policy.name, run: env.run }) })).toEqual([]);
  }, 600_000);
});
