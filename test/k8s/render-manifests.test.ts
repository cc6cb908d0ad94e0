import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IDeployment, INetworkPolicy, IService, K8sObject } from "../../src/k8s/k8s-objects.js";
import { manifestsYaml, renderManifests, type PolicyForRender } from "../../src/k8s/render-manifests.js";
import { k8sLabels, MCP_PORT, PROXY_PORT } from "../../src/k8s/render-server.js";
import { loadPolicyFile } from "../../src/policy/index.js";
import { defaultRuntimeConfig } from "../../src/runtime/runtime-config.js";
import { SidecarConfigSchema } from "../../src/sidecar/sidecar-config.js";
import { hangar } from "../cli/capture-io.js";
import { NetworkPolicyEvaluator, type Pod } from "./network-policy-evaluator.js";

/**
 * `hangar k8s render` over the repository's own policies (plus one that asks for gVisor):
 * every object validates against the official OpenAPI definitions of Kubernetes v1.36.0 (as
 * compiled by kubernetes-models 5.1.0, pinned exactly), and the NetworkPolicies, evaluated by
 * the rules of the API, leave each server one way out (its own sidecar) and one way in (the gateway).
 */

const ROOT = join(import.meta.dirname, "..", "..");
const NS = "hangar-test";
let dir: string;
let policies: PolicyForRender[];
let objects: readonly K8sObject[];

async function load(file: string): Promise<PolicyForRender> {
  const result = await loadPolicyFile(file);
  if (!result.ok) throw new Error(`${file}: ${JSON.stringify(result.issues)}`);
  return { file, text: await readFile(file, "utf8"), policy: result.policy, compiled: result.compiled };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-k8s-"));
  const gvisorFile = join(dir, "sandboxed.yaml");
  await writeFile(
    gvisorFile,
    [
      "version: 1",
      "name: sandboxed",
      "server:",
      "  image: { ref: example/sandboxed:1.0 }",
      "  command: [/usr/local/bin/sandboxed]",
      "  isolation: gvisor",
      "  secrets: [SANDBOXED_TOKEN]",
      "egress:",
      "  allow:",
      "    - host: api.example.com",
      "      ports: [443, 8443]",
      "",
    ].join("\n"),
  );
  const files = (await readdir(join(ROOT, "policies"))).filter((f) => f.endsWith(".yaml")).map((f) => join(ROOT, "policies", f));
  policies = await Promise.all([...files, gvisorFile].map(load));
  objects = renderManifests(policies, {
    namespace: NS,
    runtime: defaultRuntimeConfig().runtime,
    serviceIpRange: "10.96.0.128/25",
    imagePrefix: "registry.test/",
    gatewayImage: "registry.test/hangar/hangar:1",
  }).objects;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ofKind = <T extends K8sObject>(kind: string): T[] => objects.filter((o) => o.kind === kind) as T[];
const named = <T extends K8sObject>(kind: string, name: string): T => {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found as T;
};

const MODELS: Record<string, { validate(o: unknown): void }> = {
  "apps/v1/Deployment": { validate: (o) => new Deployment(o as never).validate() },
  "v1/Service": { validate: (o) => new Service(o as never).validate() },
  "v1/ConfigMap": { validate: (o) => new ConfigMap(o as never).validate() },
  "v1/PersistentVolumeClaim": { validate: (o) => new PersistentVolumeClaim(o as never).validate() },
  "networking.k8s.io/v1/NetworkPolicy": { validate: (o) => new NetworkPolicy(o as never).validate() },
};

describe("schema validation against Kubernetes v1.36.0 (kubernetes-models 5.1.0)", () => {
  it("renders every kind the issue asks for, for every policy", () => {
    const servers = policies.map((p) => p.policy.name);
    for (const s of servers) {
      for (const [kind, name] of [
        ["Deployment", `hangar-${s}-server`],
        ["Deployment", `hangar-${s}-sidecar`],
        ["Service", `hangar-${s}-sidecar`],
        ["ConfigMap", `hangar-${s}-sidecar`],
        ["NetworkPolicy", `hangar-${s}-server`],
      ] as const) {
        expect(named(kind, name).metadata?.namespace).toBe(NS);
      }
    }
    for (const kind of ["Deployment", "Service", "PersistentVolumeClaim", "NetworkPolicy"]) expect(named(kind, kind === "PersistentVolumeClaim" ? "hangar-gateway-audit" : "hangar-gateway")).toBeDefined();
  });

  it("every rendered object validates against the official schema of its kind", () => {
    expect(objects.length).toBeGreaterThan(30);
    for (const o of objects) {
      const model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(model, `${o.apiVersion} ${o.kind} has a model`).toBeDefined();
      expect(() => model!.validate(o), `${o.kind} ${o.metadata?.name}`).not.toThrow();
    }
  });

  it("the validator is live: a wrong type or an unknown enum value in a rendered object is refused", () => {
    const deployment = structuredClone(named<IDeployment>("Deployment", "hangar-everything-server"));
    (deployment.spec!.template.spec!.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = "8080";
    expect(() => MODELS["apps/v1/Deployment"]!.validate(deployment)).toThrow(/containerPort must be integer/);
    const policy = structuredClone(named<INetworkPolicy>("NetworkPolicy", "hangar-everything-server"));
    (policy.spec!.policyTypes as string[]).push("Sideways");
    expect(() => MODELS["networking.k8s.io/v1/NetworkPolicy"]!.validate(policy)).toThrow(/allowed values/);
  });

  it("the YAML stream parses back to the same objects", () => {
    const docs = parseAllDocuments(manifestsYaml(objects)).map((d) => d.toJS() as unknown);
    expect(docs).toEqual(JSON.parse(JSON.stringify(objects)));
  });
});

describe("the server pod", () => {
  it("is hardened like the Docker sandbox: non-root 10001, no capabilities, read-only root, RuntimeDefault seccomp, no token", () => {
    for (const p of policies) {
      const spec = named<IDeployment>("Deployment", `hangar-${p.policy.name}-server`).spec!.template.spec!;
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.enableServiceLinks).toBe(false);
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: "RuntimeDefault" } });
      expect(spec.containers).toHaveLength(1);
      expect(spec.containers[0]!.securityContext).toEqual({ allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } });
      expect(spec.containers[0]!.resources?.limits).toMatchObject({ memory: expect.stringMatching(/Mi$|Gi$/), cpu: expect.stringMatching(/m$/) });
    }
  });

  it("runs under the gvisor RuntimeClass exactly when its isolation (policy over hangar.yaml) says gvisor", () => {
    const classOf = (s: string): string | undefined => named<IDeployment>("Deployment", `hangar-${s}-server`).spec!.template.spec!.runtimeClassName;
    expect(classOf("sandboxed")).toBe("gvisor");
    expect(classOf("everything")).toBeUndefined();
    // The sidecar is never under gVisor.
    expect(named<IDeployment>("Deployment", "hangar-sandboxed-sidecar").spec!.template.spec!.runtimeClassName).toBeUndefined();
    // hangar.yaml's runtime.isolation applies to policies that do not say.
    const all = renderManifests(policies, {
      namespace: NS,
      runtime: { ...defaultRuntimeConfig().runtime, isolation: "gvisor" },
      serviceIpRange: "10.96.0.128/25",
      imagePrefix: "",
      gatewayImage: "g",
    }).objects.filter((o): o is IDeployment => o.kind === "Deployment" && o.metadata?.labels?.["hangar.dev/role"] === "server");
    expect(all.map((d) => d.spec!.template.spec!.runtimeClassName)).toEqual(all.map(() => "gvisor"));
  });

  it("has its sidecar's Service address as its only nameserver, and the sidecar answers declared names with that address", () => {
    for (const p of policies) {
      const name = p.policy.name;
      const service = named<IService>("Service", `hangar-${name}-sidecar`);
      const ip = service.spec!.clusterIP!;
      const spec = named<IDeployment>("Deployment", `hangar-${name}-server`).spec!.template.spec!;
      expect(spec.dnsPolicy).toBe("None");
      expect(spec.dnsConfig?.nameservers).toEqual([ip]);
      const config = SidecarConfigSchema.parse(JSON.parse(named<{ data: Record<string, string> } & K8sObject>("ConfigMap", `hangar-${name}-sidecar`).data["sidecar.json"]!));
      expect(config.answerAddress).toBe(ip);
      expect(spec.containers[0]!.env).toContainEqual({ name: "HTTPS_PROXY", value: `http://${ip}:${PROXY_PORT}` });
    }
    const ips = ofKind<IService>("Service").flatMap((s) => (s.spec?.clusterIP !== undefined ? [s.spec.clusterIP] : []));
    expect(new Set(ips).size).toBe(ips.length);
  });

  it("references secrets by name and never carries a value", async () => {
    const env = { GITHUB_PERSONAL_ACCESS_TOKEN: "ghp_value_that_must_not_render", POSTMARK_TOKEN: "pm-value-that-must-not-render", SANDBOXED_TOKEN: "sb-value-that-must-not-render" };
    const run = await hangar(["k8s", "render", ...policies.map((p) => p.file), "--namespace", NS, "--json"], { env });
    expect(run.code).toBe(0);
    for (const value of Object.values(env)) expect(run.stdout).not.toContain(value);
    for (const p of policies) {
      const container = named<IDeployment>("Deployment", `hangar-${p.policy.name}-server`).spec!.template.spec!.containers[0]!;
      for (const secret of p.policy.server.secrets) {
        const entry = container.env?.find((e) => e.name === secret);
        expect(entry).toEqual({ name: secret, valueFrom: { secretKeyRef: { name: `hangar-${p.policy.name}-secrets`, key: secret } } });
      }
    }
  });
});

describe("NetworkPolicy reachability (evaluated by the API's rules)", () => {
  const pod = (role: "server" | "sidecar" | "gateway", server?: string, namespace = NS): Pod => ({
    name: `${role}-${server ?? "x"}`,
    namespace,
    labels: k8sLabels(role, server),
  });
  const evaluator = (): NetworkPolicyEvaluator => new NetworkPolicyEvaluator(ofKind<INetworkPolicy>("NetworkPolicy"), []);
  const declaredPorts = (name: string): number[] => [...policies.find((p) => p.policy.name === name)!.compiled.transparentPorts];

  it("a server reaches its own sidecar on DNS, the proxy and each declared port, and nothing else there", () => {
    const e = evaluator();
    for (const p of policies) {
      const name = p.policy.name;
      const server = pod("server", name);
      const sidecar = pod("sidecar", name);
      expect(e.canReach(server, sidecar, 53, "UDP")).toBe(true);
      expect(e.canReach(server, sidecar, 53, "TCP")).toBe(true);
      expect(e.canReach(server, sidecar, PROXY_PORT)).toBe(true);
      for (const port of declaredPorts(name)) expect(e.canReach(server, sidecar, port), `${name} → sidecar:${port}`).toBe(true);
      for (const port of [22, 8081, 9999]) if (!declaredPorts(name).includes(port)) expect(e.canReach(server, sidecar, port)).toBe(false);
    }
  });

  it("a server reaches nothing but its own sidecar: not other sidecars, servers, the gateway, cluster DNS or any address", () => {
    const e = evaluator();
    const kubeDns: Pod = { name: "coredns", namespace: "kube-system", labels: { "k8s-app": "kube-dns" } };
    const outside: Pod = { name: "outside", namespace: "elsewhere", labels: {}, ip: "192.0.2.10" };
    for (const p of policies) {
      const name = p.policy.name;
      const server = pod("server", name);
      const others = policies.map((o) => o.policy.name).filter((o) => o !== name);
      for (const other of others) {
        for (const port of [53, PROXY_PORT, 443, MCP_PORT]) {
          expect(e.canReach(server, pod("sidecar", other), port), `${name} → ${other}'s sidecar:${port}`).toBe(false);
          expect(e.canReach(server, pod("server", other), port), `${name} → ${other}:${port}`).toBe(false);
        }
      }
      for (const port of [8080, 443]) expect(e.canReach(server, pod("gateway"), port)).toBe(false);
      expect(e.canReach(server, kubeDns, 53, "UDP")).toBe(false);
      for (const port of [80, 443]) expect(e.canReach(server, outside, port)).toBe(false);
    }
  });

  it("the server's own policies hold alone (each wall stands without the other side's)", () => {
    // Only the policies that select servers: the sidecars' and gateway's ingress rules do not help here.
    const serverSide = new NetworkPolicyEvaluator(
      ofKind<INetworkPolicy>("NetworkPolicy").filter((n) => n.metadata?.labels?.["hangar.dev/role"] === "server"),
      [],
    );
    for (const p of policies) {
      const name = p.policy.name;
      expect(serverSide.canReach(pod("server", name), pod("sidecar", name), 53, "UDP")).toBe(true);
      for (const other of policies.map((o) => o.policy.name).filter((o) => o !== name)) {
        expect(serverSide.canReach(pod("server", name), pod("sidecar", other), 53, "UDP")).toBe(false);
        expect(serverSide.canReach(pod("server", name), pod("sidecar", other), PROXY_PORT)).toBe(false);
      }
      expect(serverSide.canReach(pod("server", name), pod("gateway"), MCP_PORT)).toBe(false);
    }
  });

  it("only the gateway reaches a server, and only on the MCP port", () => {
    const e = evaluator();
    const stranger: Pod = { name: "stranger", namespace: NS, labels: { app: "other" } };
    const foreign: Pod = { name: "foreign", namespace: "elsewhere", labels: { "hangar.dev/role": "gateway" } };
    for (const p of policies) {
      const name = p.policy.name;
      const server = pod("server", name);
      expect(e.canReach(pod("gateway"), server, MCP_PORT)).toBe(true);
      expect(e.canReach(pod("gateway"), server, 22)).toBe(false);
      expect(e.canReach(pod("sidecar", name), server, MCP_PORT)).toBe(false);
      expect(e.canReach(stranger, server, MCP_PORT)).toBe(false);
      // A pod labelled "gateway" in another namespace is not our gateway.
      expect(e.canReach(foreign, server, MCP_PORT)).toBe(false);
      for (const other of policies.map((o) => o.policy.name).filter((o) => o !== name)) expect(e.canReach(pod("server", other), server, MCP_PORT)).toBe(false);
    }
  });

  it("a sidecar serves only its own server", () => {
    const e = evaluator();
    for (const p of policies) {
      const name = p.policy.name;
      for (const other of policies.map((o) => o.policy.name).filter((o) => o !== name)) expect(e.canReach(pod("server", other), pod("sidecar", name), 53, "UDP")).toBe(false);
      expect(e.canReach(pod("gateway"), pod("sidecar", name), PROXY_PORT)).toBe(false);
    }
  });

  it("the evaluator is not vacuous: without the rendered policies everything reaches everything", () => {
    const open = new NetworkPolicyEvaluator([], []);
    expect(open.canReach(pod("server", "everything"), pod("server", "github"), MCP_PORT)).toBe(true);
    // And the default-deny alone isolates a server whose own policy is missing.
    const onlyDefault = new NetworkPolicyEvaluator(ofKind<INetworkPolicy>("NetworkPolicy").filter((n) => n.metadata?.name === "hangar-servers-default-deny"), []);
    expect(onlyDefault.canReach(pod("server", "everything"), pod("sidecar", "everything"), 53, "UDP")).toBe(false);
    expect(onlyDefault.canReach(pod("gateway"), pod("server", "everything"), MCP_PORT)).toBe(false);
  });
});

describe("hangar k8s render", () => {
  it("--out writes one file per object and a kustomization.yaml listing them", async () => {
    const out = join(dir, "out");
    const run = await hangar(["k8s", "render", join(ROOT, "policies/everything.yaml"), "--namespace", NS, "--out", out]);
    expect(run.code).toBe(0);
    const files = (await readdir(out)).sort();
    const kustomization = parseAllDocuments(await readFile(join(out, "kustomization.yaml"), "utf8"))[0]!.toJS() as { resources: string[] };
    expect([...kustomization.resources, "kustomization.yaml"].sort()).toEqual(files);
    expect(files).toContain("deployment-hangar-everything-server.yaml");
  });

  it("a policy with an error renders nothing and exits 1 naming the file", async () => {
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "version: 1\nname: bad\nserver: { image: { ref: x } }\negress: { allow: [{ host: a.test, ports: [99999] }] }\n");
    const run = await hangar(["k8s", "render", bad]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("bad.yaml");
  });
});
