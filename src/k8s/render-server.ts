import { HangarError } from "../core/errors.js";
import type { Isolation, Policy, SecretRule } from "../core/policy/policy-schema.js";
import type { CompiledPolicy } from "../core/policy/compiled-policy.js";
import { SidecarConfigSchema, type SidecarConfigInput } from "../sidecar/sidecar-config.js";
import {
  LABEL_K8S_ROLE,
  LABEL_K8S_SERVER,
  LABEL_PART_OF,
  type IConfigMap,
  type IDeployment,
  type INetworkPolicy,
  type IService,
  type K8sObject,
  type K8sRole,
} from "./k8s-objects.js";

/**
 * One server's objects, from its compiled policy: the hardened server Deployment, its sidecar
 * (Deployment, Service with a fixed ClusterIP, ConfigMap holding the compiled sidecar config
 * and the policy), the server's MCP Service, and the NetworkPolicies that leave the server one
 * way out (its own sidecar) and one way in (the gateway). Pure: same input, same objects.
 */

export const SANDBOX_UID = 10001;
export const PROXY_PORT = 3128;
export const DNS_PORT = 53;
/** Where the stdio↔HTTP bridge serves the server's MCP endpoint inside the pod. */
export const MCP_PORT = 8080;
/** Where the bridge's bundle is in the sidecar image, and where the server pod's init container puts it. */
export const BRIDGE_IN_SIDECAR_IMAGE = "/app/dist/bridge/main.js";
export const BRIDGE_DIR = "/opt/hangar";
export const BRIDGE_FILE = `${BRIDGE_DIR}/bridge.js`;

/**
 * The server container's command: the stdio↔HTTP bridge (src/bridge) wrapping the server's
 * stdio command, serving MCP on MCP_PORT. An npm server's bin is found by the bridge in the
 * image (`--npm`); an image or a build needs server.command, since its entrypoint is unknown here.
 */
export function bridgedServerCommand(policy: Policy): string[] {
  const { server } = policy;
  const head = ["node", BRIDGE_FILE, "--listen", `0.0.0.0:${MCP_PORT}`];
  if (server.command !== undefined) return [...head, "--", ...server.command, ...server.args];
  if (server.npm !== undefined) return [...head, "--npm", server.npm.package, "--", ...server.args];
  throw new HangarError("HANGAR_CONFIG_INVALID", `policy ${policy.name}: server.command is needed in Kubernetes, where the stdio↔HTTP bridge starts the server (the image's own entrypoint is not known when rendering)`, {
    data: { server: policy.name },
  });
}

/** The RuntimeClass name a cluster operator registers for gVisor (handler runsc). */
export const GVISOR_RUNTIME_CLASS = "gvisor";
const CONFIG_DIR = "/etc/hangar";

export interface ServerRenderInput {
  readonly policy: Policy;
  readonly compiled: CompiledPolicy;
  /** The policy file's text, as the sidecar reads it (policy.yaml in the ConfigMap). */
  readonly policyText: string;
  readonly namespace: string;
  readonly isolation: Isolation;
  /** The sidecar Service's fixed ClusterIP: the server's only nameserver and every declared name's answer. */
  readonly sidecarIp: string;
  readonly sidecarImage: string;
  readonly serverImage: string;
  readonly trustedUpstreamRanges: readonly string[];
  readonly upstreamResolvers?: readonly string[];
  readonly sidecarLimits: { readonly memory: string; readonly cpus: number };
}

export const k8sNames = (server: string): { server: string; sidecar: string; secrets: string; ca: string } => ({
  server: `hangar-${server}-server`,
  sidecar: `hangar-${server}-sidecar`,
  secrets: `hangar-${server}-secrets`,
  ca: `hangar-${server}-ca`,
});

export const k8sLabels = (role: K8sRole, server?: string): Record<string, string> => ({
  [LABEL_PART_OF]: "hangar",
  [LABEL_K8S_ROLE]: role,
  ...(server !== undefined ? { [LABEL_K8S_SERVER]: server } : {}),
});

const selectorOf = (role: K8sRole, server?: string): Record<string, string> => {
  const { [LABEL_PART_OF]: _partOf, ...rest } = k8sLabels(role, server);
  return rest;
};

/** Kubernetes quantities: "256m" (policy, bytes) is "256Mi" here; "m" would mean milli. */
export function memoryQuantity(text: string): string {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)$/i.exec(text.trim());
  if (m === null) return text;
  const unit = { "": "", b: "", k: "Ki", m: "Mi", g: "Gi" }[m[2]!.toLowerCase()] ?? "";
  return `${m[1]}${unit}`;
}

const cpuQuantity = (cpus: number): string => `${Math.round(cpus * 1000)}m`;

/** The hardening of docker's server container, in Kubernetes terms. */
const POD_SECURITY = {
  runAsNonRoot: true,
  runAsUser: SANDBOX_UID,
  runAsGroup: SANDBOX_UID,
  fsGroup: SANDBOX_UID,
  seccompProfile: { type: "RuntimeDefault" },
} as const;

const CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
};

/** No API token, no injected service env (addresses of everything in the namespace), no host namespaces. */
const POD_ISOLATION = {
  automountServiceAccountToken: false,
  enableServiceLinks: false,
  hostNetwork: false,
  hostPID: false,
  hostIPC: false,
} as const;

/** What the sidecar runs with in the cluster: listens on its pod, answers with its Service's address. */
export function k8sSidecarConfig(input: ServerRenderInput): SidecarConfigInput {
  const inspects = input.policy.egress.allow.some((a) => a.inspect === true) || input.compiled.capture.enabled;
  const config: SidecarConfigInput = {
    policyFile: `${CONFIG_DIR}/policy.yaml`,
    listen: { host: "0.0.0.0", dnsPort: DNS_PORT, proxyPort: PROXY_PORT },
    answerAddress: input.sidecarIp,
    trustedUpstreamRanges: [...input.trustedUpstreamRanges],
    ...(input.upstreamResolvers !== undefined ? { upstreamDns: [...input.upstreamResolvers] } : {}),
    ...(inspects ? { tls: { ca: { certFile: "/etc/hangar-ca/tls.crt", keyFile: "/etc/hangar-ca/tls.key" } } } : {}),
  };
  // Compiled means checked: a config the sidecar would refuse never reaches a cluster.
  SidecarConfigSchema.parse(config);
  return config;
}

export function renderServer(input: ServerRenderInput): K8sObject[] {
  const { policy, compiled, namespace } = input;
  const name = policy.name;
  const names = k8sNames(name);
  const ports = compiled.transparentPorts;
  const sidecarConfig = k8sSidecarConfig(input);
  const inspects = sidecarConfig.tls !== undefined;
  const proxy = `http://${input.sidecarIp}:${PROXY_PORT}`;
  const rules: readonly SecretRule[] = policy.server.secretRules ?? policy.server.secrets.map((n) => ({ name: n }));
  const plainSecrets = rules.filter((r) => r.inject === undefined).map((r) => r.name);
  const injectedSecrets = rules.filter((r) => r.inject !== undefined).map((r) => r.name);
  const secretRef = (key: string): { valueFrom: { secretKeyRef: { name: string; key: string } } } => ({ valueFrom: { secretKeyRef: { name: names.secrets, key } } });

  const configMap: IConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: names.sidecar, namespace, labels: k8sLabels("sidecar", name) },
    data: { "sidecar.json": `${JSON.stringify(sidecarConfig, null, 2)}\n`, "policy.yaml": input.policyText },
  };

  const sidecarService: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: names.sidecar, namespace, labels: k8sLabels("sidecar", name) },
    spec: {
      type: "ClusterIP",
      clusterIP: input.sidecarIp,
      selector: selectorOf("sidecar", name),
      ports: [
        { name: "dns-udp", protocol: "UDP", port: DNS_PORT, targetPort: DNS_PORT },
        { name: "dns-tcp", protocol: "TCP", port: DNS_PORT, targetPort: DNS_PORT },
        { name: "proxy", protocol: "TCP", port: PROXY_PORT, targetPort: PROXY_PORT },
        ...ports.map((p) => ({ name: `tcp-${p}`, protocol: "TCP" as const, port: p, targetPort: p })),
      ],
    },
  };

  const sidecarDeployment: IDeployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: names.sidecar, namespace, labels: k8sLabels("sidecar", name) },
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorOf("sidecar", name) },
      template: {
        metadata: { labels: k8sLabels("sidecar", name) },
        spec: {
          ...POD_ISOLATION,
          securityContext: {
            ...POD_SECURITY,
            // A namespaced "safe" sysctl: binds 53 and declared ports below 1024 with no capability.
            sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
          },
          containers: [
            {
              name: "sidecar",
              image: input.sidecarImage,
              env: [
                { name: "HANGAR_SIDECAR_CONFIG", valueFrom: { configMapKeyRef: { name: names.sidecar, key: "sidecar.json" } } },
                // Injected credentials live here, never in the server pod: references only, the values stay in the Secret.
                ...injectedSecrets.map((s) => ({ name: `HANGAR_SECRET_${s}`, ...secretRef(s) })),
              ],
              ports: [
                { name: "dns-udp", containerPort: DNS_PORT, protocol: "UDP" },
                { name: "dns-tcp", containerPort: DNS_PORT, protocol: "TCP" },
                { name: "proxy", containerPort: PROXY_PORT, protocol: "TCP" },
                ...ports.map((p) => ({ name: `tcp-${p}`, containerPort: p, protocol: "TCP" as const })),
              ],
              resources: {
                limits: { memory: memoryQuantity(input.sidecarLimits.memory), cpu: cpuQuantity(input.sidecarLimits.cpus) },
                requests: { memory: memoryQuantity(input.sidecarLimits.memory), cpu: cpuQuantity(input.sidecarLimits.cpus) },
              },
              securityContext: CONTAINER_SECURITY,
              volumeMounts: [
                { name: "config", mountPath: CONFIG_DIR, readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
                ...(inspects ? [{ name: "ca", mountPath: "/etc/hangar-ca", readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            { name: "config", configMap: { name: names.sidecar } },
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
            ...(inspects ? [{ name: "ca", secret: { secretName: names.ca } }] : []),
          ],
        },
      },
    },
  };

  const serverService: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: names.server, namespace, labels: k8sLabels("server", name) },
    spec: { type: "ClusterIP", selector: selectorOf("server", name), ports: [{ name: "mcp", protocol: "TCP", port: MCP_PORT, targetPort: MCP_PORT }] },
  };

  const serverDeployment: IDeployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: names.server, namespace, labels: k8sLabels("server", name) },
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorOf("server", name) },
      template: {
        metadata: { labels: k8sLabels("server", name) },
        spec: {
          ...POD_ISOLATION,
          ...(input.isolation === "gvisor" ? { runtimeClassName: GVISOR_RUNTIME_CLASS } : {}),
          // The sidecar is the only resolver: the cluster's DNS never sees a sandbox's names.
          dnsPolicy: "None",
          dnsConfig: { nameservers: [input.sidecarIp], searches: [], options: [{ name: "ndots", value: "1" }] },
          securityContext: POD_SECURITY,
          // The bridge comes from the sidecar image (our code, one bundled file), copied with its own node.
          initContainers: [
            {
              name: "bridge",
              image: input.sidecarImage,
              command: ["node", "-e", `require("node:fs").copyFileSync(${JSON.stringify(BRIDGE_IN_SIDECAR_IMAGE)}, ${JSON.stringify(BRIDGE_FILE)})`],
              resources: { limits: { memory: "64Mi", cpu: "100m" }, requests: { memory: "64Mi", cpu: "100m" } },
              securityContext: CONTAINER_SECURITY,
              volumeMounts: [{ name: "bridge", mountPath: BRIDGE_DIR }],
            },
          ],
          containers: [
            {
              name: "server",
              image: input.serverImage,
              command: bridgedServerCommand(policy),
              readinessProbe: { tcpSocket: { port: MCP_PORT }, periodSeconds: 5 },
              env: [
                { name: "HOME", value: "/tmp" },
                ...Object.entries(policy.server.env).map(([k, v]) => ({ name: k, value: v })),
                ...plainSecrets.map((s) => ({ name: s, ...secretRef(s) })),
                ...(inspects
                  ? [
                      { name: "NODE_EXTRA_CA_CERTS", value: "/etc/hangar-ca/ca.crt" },
                      { name: "SSL_CERT_FILE", value: "/etc/hangar-ca/ca.crt" },
                    ]
                  : []),
                ...["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"].map((k) => ({ name: k, value: proxy })),
                ...["NO_PROXY", "no_proxy"].map((k) => ({ name: k, value: "localhost,127.0.0.1" })),
              ],
              ports: [{ name: "mcp", containerPort: MCP_PORT, protocol: "TCP" }],
              resources: {
                limits: { memory: memoryQuantity(policy.server.resources.memory), cpu: cpuQuantity(policy.server.resources.cpus) },
                requests: { memory: memoryQuantity(policy.server.resources.memory), cpu: cpuQuantity(policy.server.resources.cpus) },
              },
              securityContext: CONTAINER_SECURITY,
              volumeMounts: [
                { name: "tmp", mountPath: "/tmp" },
                { name: "bridge", mountPath: BRIDGE_DIR, readOnly: true },
                ...(inspects ? [{ name: "ca", mountPath: "/etc/hangar-ca", readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
            { name: "bridge", emptyDir: { medium: "Memory", sizeLimit: "4Mi" } },
            // The certificate only: the key stays in the sidecar's mount of the same Secret.
            ...(inspects ? [{ name: "ca", secret: { secretName: names.ca, items: [{ key: "tls.crt", path: "ca.crt" }] } }] : []),
          ],
        },
      },
    },
  };

  const serverPolicy: INetworkPolicy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: names.server, namespace, labels: k8sLabels("server", name) },
    spec: {
      podSelector: { matchLabels: selectorOf("server", name) },
      policyTypes: ["Ingress", "Egress"],
      // In: the gateway, on the MCP port, and nobody else.
      ingress: [{ from: [{ podSelector: { matchLabels: selectorOf("gateway") } }], ports: [{ protocol: "TCP", port: MCP_PORT }] }],
      // Out: its own sidecar, on DNS, the proxy and the declared ports, and nothing else.
      egress: [
        {
          to: [{ podSelector: { matchLabels: selectorOf("sidecar", name) } }],
          ports: [
            { protocol: "UDP", port: DNS_PORT },
            { protocol: "TCP", port: DNS_PORT },
            { protocol: "TCP", port: PROXY_PORT },
            ...ports.map((p) => ({ protocol: "TCP" as const, port: p })),
          ],
        },
      ],
    },
  };

  const sidecarPolicy: INetworkPolicy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: names.sidecar, namespace, labels: k8sLabels("sidecar", name) },
    spec: {
      podSelector: { matchLabels: selectorOf("sidecar", name) },
      // Its own server is its only client. Out, only the ports the policy declares and DNS:
      // which names and addresses is the sidecar's to decide, name by name.
      policyTypes: ["Ingress", "Egress"],
      egress: [
        {
          ports: [
            { protocol: "UDP", port: DNS_PORT },
            { protocol: "TCP", port: DNS_PORT },
            ...[...new Set(policy.egress.allow.flatMap((a) => a.ports))].sort((a, b) => a - b).map((p) => ({ protocol: "TCP" as const, port: p })),
          ],
        },
      ],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: selectorOf("server", name) } }],
          ports: [
            { protocol: "UDP", port: DNS_PORT },
            { protocol: "TCP", port: DNS_PORT },
            { protocol: "TCP", port: PROXY_PORT },
            ...ports.map((p) => ({ protocol: "TCP" as const, port: p })),
          ],
        },
      ],
    },
  };

  return [configMap, sidecarService, sidecarDeployment, sidecarPolicy, serverService, serverDeployment, serverPolicy];
}
