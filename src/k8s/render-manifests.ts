import { stringify } from "yaml";
import type { CompiledPolicy } from "../core/policy/compiled-policy.js";
import { HangarError } from "../core/errors.js";
import type { Policy } from "../core/policy/policy-schema.js";
import type { RuntimeSettings } from "../runtime/runtime-config.js";
import { LABEL_K8S_ROLE, type INetworkPolicy, type K8sObject } from "./k8s-objects.js";
import { renderGateway } from "./render-gateway.js";
import { k8sLabels, renderServer } from "./render-server.js";
import { allocateServiceIps } from "./service-ips.js";

/**
 * `hangar k8s render`: policies plus hangar.yaml's runtime section in, plain manifests out.
 * Pure, so it is golden- and schema-tested without a cluster; the CLI only reads and writes files.
 */

export interface PolicyForRender {
  readonly file: string;
  readonly text: string;
  readonly policy: Policy;
  readonly compiled: CompiledPolicy;
}

export interface RenderOptions {
  readonly namespace: string;
  readonly runtime: RuntimeSettings;
  /** The range the sidecar Services' fixed ClusterIPs come from (inside the cluster's service CIDR, its static band). */
  readonly serviceIpRange: string;
  /** Registry prefix for images Hangar builds (server images from npm or a build), e.g. "registry.example/team/". */
  readonly imagePrefix: string;
  readonly gatewayImage: string;
  readonly configText?: string;
  readonly auditStorage?: string;
}

export interface RenderedManifests {
  readonly objects: readonly K8sObject[];
  /** One entry per server: what a reader of the output needs to know. */
  readonly servers: ReadonlyArray<{ readonly name: string; readonly file: string; readonly isolation: string; readonly sidecarIp: string; readonly image: string }>;
}

/** Service names are DNS labels: "hangar-<name>-sidecar" must stay within 63 characters. */
const MAX_SERVER_NAME = 63 - "hangar--sidecar".length;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function serverImageFor(policy: Policy, imagePrefix: string): string {
  const { server } = policy;
  if (server.image !== undefined) return server.image.digest !== undefined ? `${server.image.ref.split("@")[0]}@${server.image.digest}` : server.image.ref;
  // Built by Hangar (npm or a build context): the operator pushes it under this name.
  const tag = server.npm !== undefined ? server.npm.version : "local";
  return `${imagePrefix}hangar/server-${policy.name}:${tag}`;
}

export function renderManifests(policies: readonly PolicyForRender[], options: RenderOptions): RenderedManifests {
  if (!DNS_LABEL.test(options.namespace) || options.namespace.length > 63) {
    throw new HangarError("HANGAR_USAGE", `--namespace ${JSON.stringify(options.namespace)} is not a Kubernetes namespace name (lower-case letters, digits and "-", at most 63)`);
  }
  const seen = new Map<string, string>();
  for (const p of policies) {
    const other = seen.get(p.policy.name);
    if (other !== undefined) throw new HangarError("HANGAR_USAGE", `${p.file}: name: ${JSON.stringify(p.policy.name)} is also the name in ${other}; each server needs its own`);
    seen.set(p.policy.name, p.file);
    if (p.policy.name.length > MAX_SERVER_NAME) {
      throw new HangarError("HANGAR_USAGE", `${p.file}: name: ${JSON.stringify(p.policy.name)} is longer than ${MAX_SERVER_NAME} characters, too long for its Kubernetes Service names`);
    }
  }
  const ips = allocateServiceIps([...seen.keys()], options.serviceIpRange);
  const { runtime } = options;
  const servers: Array<RenderedManifests["servers"][number]> = [];
  const objects: K8sObject[] = [];

  // Any server pod is isolated both ways even if its own policy were missing or renamed.
  const defaultDeny: INetworkPolicy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "hangar-servers-default-deny", namespace: options.namespace, labels: k8sLabels("server") },
    spec: { podSelector: { matchLabels: { [LABEL_K8S_ROLE]: "server" } }, policyTypes: ["Ingress", "Egress"] },
  };
  objects.push(defaultDeny);

  for (const p of [...policies].sort((a, b) => a.policy.name.localeCompare(b.policy.name))) {
    const isolation = p.policy.server.isolation ?? runtime.isolation;
    const sidecarIp = ips.get(p.policy.name)!;
    const image = serverImageFor(p.policy, options.imagePrefix);
    objects.push(
      ...renderServer({
        policy: p.policy,
        compiled: p.compiled,
        policyText: p.text,
        namespace: options.namespace,
        isolation,
        sidecarIp,
        sidecarImage: `${options.imagePrefix}${runtime.sidecar.image}`,
        serverImage: image,
        trustedUpstreamRanges: runtime.trustedUpstreamRanges,
        ...(runtime.upstreamResolvers !== undefined ? { upstreamResolvers: runtime.upstreamResolvers } : {}),
        sidecarLimits: { memory: runtime.sidecar.memory, cpus: runtime.sidecar.cpus },
      }),
    );
    servers.push({ name: p.policy.name, file: p.file, isolation, sidecarIp, image });
  }
  objects.push(
    ...renderGateway({
      namespace: options.namespace,
      image: options.gatewayImage,
      auditStorage: options.auditStorage ?? "1Gi",
      ...(options.configText !== undefined ? { configText: options.configText } : {}),
    }),
  );
  return { objects, servers };
}

/** One YAML stream, `---` between documents, in render order (kubectl apply -f takes it as is). */
export function manifestsYaml(objects: readonly K8sObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

/** One file per object for --out: `<kind>-<name>.yaml`, lower-case, plus a kustomization.yaml listing them. */
export function manifestFiles(objects: readonly K8sObject[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const o of objects) files.set(`${o.kind!.toLowerCase()}-${o.metadata!.name!}.yaml`, stringify(o, { lineWidth: 0 }));
  files.set("kustomization.yaml", stringify({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources: [...files.keys()] }));
  return files;
}
