import { LABEL_K8S_ROLE, type IConfigMap, type IDeployment, type INetworkPolicy, type IPersistentVolumeClaim, type IService, type K8sObject } from "./k8s-objects.js";
import { DNS_PORT, k8sLabels, MCP_PORT, SANDBOX_UID } from "./render-server.js";

/**
 * The governance gateway: one Deployment (one replica, Recreate: the audit log has exactly one
 * writer), its Service, the PVC holding the hash-chained audit log, and its NetworkPolicy.
 * hangar.yaml goes in a ConfigMap as given; the audit signing key is a Secret reference.
 */

export const GATEWAY_NAME = "hangar-gateway";
export const GATEWAY_PORT = 8080;
export const AUDIT_DIR = "/var/lib/hangar";

export interface GatewayRenderInput {
  readonly namespace: string;
  readonly image: string;
  /** hangar.yaml's text, when --config named one. */
  readonly configText?: string;
  readonly auditStorage: string;
}

export function renderGateway(input: GatewayRenderInput): K8sObject[] {
  const { namespace } = input;
  const labels = k8sLabels("gateway");
  const selector = { [LABEL_K8S_ROLE]: "gateway" };
  const objects: K8sObject[] = [];

  if (input.configText !== undefined) {
    const config: IConfigMap = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: GATEWAY_NAME, namespace, labels },
      data: { "hangar.yaml": input.configText },
    };
    objects.push(config);
  }

  const pvc: IPersistentVolumeClaim = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: `${GATEWAY_NAME}-audit`, namespace, labels },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: input.auditStorage } } },
  };

  const deployment: IDeployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: GATEWAY_NAME, namespace, labels },
    spec: {
      // One writer per audit log: two gateways on one chain would fork it.
      replicas: 1,
      strategy: { type: "Recreate" },
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: SANDBOX_UID, runAsGroup: SANDBOX_UID, fsGroup: SANDBOX_UID, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "gateway",
              image: input.image,
              args: ["serve", "--config", "/etc/hangar/hangar.yaml", "--http", `0.0.0.0:${GATEWAY_PORT}`],
              // hangar.yaml's relative paths (.hangar/…, the audit log) land on the PVC.
              workingDir: AUDIT_DIR,
              ports: [{ name: "mcp", containerPort: GATEWAY_PORT, protocol: "TCP" }],
              securityContext: { allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
              volumeMounts: [
                { name: "config", mountPath: "/etc/hangar", readOnly: true },
                { name: "audit", mountPath: AUDIT_DIR },
                { name: "keys", mountPath: "/etc/hangar-keys", readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
          volumes: [
            { name: "config", configMap: { name: GATEWAY_NAME } },
            { name: "audit", persistentVolumeClaim: { claimName: `${GATEWAY_NAME}-audit` } },
            // The audit log's signing key pair: created by the operator (hangar init), referenced only.
            { name: "keys", secret: { secretName: `${GATEWAY_NAME}-keys`, defaultMode: 0o400 } },
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
          ],
        },
      },
    },
  };

  const service: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: GATEWAY_NAME, namespace, labels },
    spec: { type: "ClusterIP", selector, ports: [{ name: "mcp", protocol: "TCP", port: GATEWAY_PORT, targetPort: GATEWAY_PORT }] },
  };

  const policy: INetworkPolicy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: GATEWAY_NAME, namespace, labels },
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ["Ingress", "Egress"],
      // MCP clients: any pod of another namespace, or of this one that is not a sandbox part.
      // Traffic from outside the cluster (a load balancer) is the operator's to add.
      ingress: [
        {
          from: [
            { podSelector: { matchExpressions: [{ key: LABEL_K8S_ROLE, operator: "NotIn", values: ["server", "sidecar"] }] } },
            { namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: [namespace] }] } },
          ],
          ports: [{ protocol: "TCP", port: GATEWAY_PORT }],
        },
      ],
      // Out: the servers' MCP endpoints, and the cluster's DNS to find their Services.
      egress: [
        { to: [{ podSelector: { matchLabels: { [LABEL_K8S_ROLE]: "server" } } }], ports: [{ protocol: "TCP", port: MCP_PORT }] },
        {
          to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [
            { protocol: "UDP", port: DNS_PORT },
            { protocol: "TCP", port: DNS_PORT },
          ],
        },
      ],
    },
  };

  return [...objects, pvc, deployment, service, policy];
}
