import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { INetworkPolicyPort } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort";

type ILabelSelector = NonNullable<INetworkPolicy["spec"]>["podSelector"];

/**
 * A small evaluator of Kubernetes NetworkPolicy semantics, for the tests: "can pod A reach
 * pod B on port P/proto". It follows the API's documented rules (networking.k8s.io/v1):
 * - a pod is isolated for a direction when any policy in its namespace selects it and lists
 *   that direction in policyTypes; a non-isolated direction allows everything;
 * - allowed traffic is the union of every selecting policy's rules; a connection needs both
 *   the source's egress and the destination's ingress to allow it;
 * - a rule with no `to`/`from` matches every peer, with no `ports` every port;
 * - a peer with only podSelector means pods of the policy's namespace; namespaceSelector alone,
 *   all pods of matching namespaces; both, matching pods in matching namespaces;
 * - ipBlock matches by address (pods here carry one when a test gives it).
 * Services are not peers: traffic to a Service is judged on the backend pod and targetPort.
 */

export interface Pod {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Named container ports, for policies that name a port. */
  readonly namedPorts?: Readonly<Record<string, number>>;
  readonly ip?: string;
}

export type Protocol = "TCP" | "UDP" | "SCTP";

export interface Namespace {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export function selects(selector: ILabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(value!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(value!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        throw new Error(`unknown selector operator ${e.operator}`);
    }
  }
  return true;
}

const ipToInt = (ip: string): number => ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  const start = ipToInt(base!) - (ipToInt(base!) % size);
  const v = ipToInt(ip);
  return v >= start && v < start + size;
}

export class NetworkPolicyEvaluator {
  constructor(
    private readonly policies: readonly INetworkPolicy[],
    private readonly namespaces: readonly Namespace[],
  ) {}

  private nsLabels(name: string): Readonly<Record<string, string>> {
    return this.namespaces.find((n) => n.name === name)?.labels ?? { "kubernetes.io/metadata.name": name };
  }

  private selecting(pod: Pod, direction: "Ingress" | "Egress"): INetworkPolicy[] {
    return this.policies.filter((p) => {
      if ((p.metadata?.namespace ?? "default") !== pod.namespace) return false;
      if (!selects(p.spec?.podSelector, pod.labels)) return false;
      // policyTypes defaults to Ingress, plus Egress when the policy has egress rules.
      const types = p.spec?.policyTypes ?? ["Ingress", ...(p.spec?.egress !== undefined ? ["Egress"] : [])];
      return types.includes(direction);
    });
  }

  private peerMatches(peer: INetworkPolicyPeer, policyNamespace: string, other: Pod): boolean {
    if (peer.ipBlock !== undefined) {
      if (other.ip === undefined) return false;
      return inCidr(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c) => inCidr(other.ip!, c));
    }
    const nsOk = peer.namespaceSelector !== undefined ? selects(peer.namespaceSelector, this.nsLabels(other.namespace)) : other.namespace === policyNamespace;
    const podOk = peer.podSelector !== undefined ? selects(peer.podSelector, other.labels) : true;
    return nsOk && podOk;
  }

  private portMatches(ports: readonly INetworkPolicyPort[] | undefined, target: Pod, port: number, protocol: Protocol): boolean {
    if (ports === undefined || ports.length === 0) return true;
    return ports.some((p) => {
      if ((p.protocol ?? "TCP") !== protocol) return false;
      if (p.port === undefined) return true;
      const first = typeof p.port === "number" ? p.port : target.namedPorts?.[p.port];
      if (first === undefined) return false;
      return port >= first && port <= (p.endPort ?? first);
    });
  }

  private allows(pod: Pod, direction: "Ingress" | "Egress", peer: Pod, port: number, protocol: Protocol, target: Pod): boolean {
    const selecting = this.selecting(pod, direction);
    if (selecting.length === 0) return true;
    return selecting.some((p) => {
      const ns = p.metadata?.namespace ?? "default";
      const rules = direction === "Ingress" ? (p.spec?.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })) : (p.spec?.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
      return rules.some((r) => (r.peers === undefined || r.peers.length === 0 || r.peers.some((peerSpec) => this.peerMatches(peerSpec, ns, peer))) && this.portMatches(r.ports, target, port, protocol));
    });
  }

  /** Can `from` open a connection (or send a datagram) to `to` on port/protocol. */
  canReach(from: Pod, to: Pod, port: number, protocol: Protocol = "TCP"): boolean {
    return this.allows(from, "Egress", to, port, protocol, to) && this.allows(to, "Ingress", from, port, protocol, to);
  }
}
