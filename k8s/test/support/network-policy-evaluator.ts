import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';

/**
 * A small NetworkPolicy evaluator: the semantics of networking.k8s.io/v1 that these charts rely on,
 * from the API reference. Pods are isolated for a direction once any policy in their namespace
 * selects them with that policy type; then a connection needs the source's egress AND the
 * destination's ingress to allow it. Deliberate simplifications: ipBlock matches only endpoints
 * outside the cluster (whether it matches pod IPs is up to the CNI), and loopback is not modelled.
 */

type LabelSelector = NonNullable<NonNullable<INetworkPolicy['spec']>['podSelector']>;
type Rule = {
  readonly ports?: readonly { port?: number | string; endPort?: number; protocol?: string }[];
};
type Peer = NonNullable<
  NonNullable<NonNullable<INetworkPolicy['spec']>['ingress']>[number]['from']
>[number];

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface NamespaceInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PodEndpoint {
  readonly kind: 'pod';
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Named container ports, for policies that name a port. */
  readonly ports?: readonly {
    readonly name: string;
    readonly port: number;
    readonly protocol?: Protocol;
  }[];
}

export interface ExternalEndpoint {
  readonly kind: 'external';
  readonly name: string;
  readonly ip: string;
}

export type Endpoint = PodEndpoint | ExternalEndpoint;

export interface Connection {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly port: number;
  readonly protocol: Protocol;
}

export class NetworkPolicyEvaluator {
  constructor(
    private readonly policies: readonly INetworkPolicy[],
    private readonly namespaces: readonly NamespaceInfo[],
  ) {}

  allows(connection: Connection): boolean {
    return this.egressAllows(connection) && this.ingressAllows(connection);
  }

  /** Whether any policy constrains this connection at either end. */
  governs(connection: Connection): boolean {
    return (
      this.isolating(connection.from, 'Egress').length > 0 ||
      this.isolating(connection.to, 'Ingress').length > 0
    );
  }

  egressAllows({ from, to, port, protocol }: Connection): boolean {
    const policies = this.isolating(from, 'Egress');
    if (policies.length === 0) return true;
    return policies.some((policy) =>
      (policy.spec?.egress ?? []).some(
        (rule) => this.peersMatch(rule.to, policy, to) && portsMatch(rule, to, port, protocol),
      ),
    );
  }

  ingressAllows({ from, to, port, protocol }: Connection): boolean {
    const policies = this.isolating(to, 'Ingress');
    if (policies.length === 0) return true;
    return policies.some((policy) =>
      (policy.spec?.ingress ?? []).some(
        (rule) => this.peersMatch(rule.from, policy, from) && portsMatch(rule, to, port, protocol),
      ),
    );
  }

  /** The policies that select this pod for a direction (none for endpoints outside the cluster). */
  isolating(endpoint: Endpoint, direction: 'Ingress' | 'Egress'): INetworkPolicy[] {
    if (endpoint.kind !== 'pod') return [];
    return this.policies.filter(
      (policy) =>
        (policy.metadata?.namespace ?? 'default') === endpoint.namespace &&
        policyTypes(policy).includes(direction) &&
        selectorMatches(policy.spec?.podSelector ?? {}, endpoint.labels),
    );
  }

  /** Pods among `pods` that a policy selects. */
  selectedPods(policy: INetworkPolicy, pods: readonly PodEndpoint[]): PodEndpoint[] {
    return pods.filter(
      (pod) =>
        pod.namespace === (policy.metadata?.namespace ?? 'default') &&
        selectorMatches(policy.spec?.podSelector ?? {}, pod.labels),
    );
  }

  private peersMatch(
    peers: readonly Peer[] | undefined,
    policy: INetworkPolicy,
    endpoint: Endpoint,
  ): boolean {
    // An absent or empty list means "all sources" / "all destinations".
    if (!peers || peers.length === 0) return true;
    return peers.some((peer) => this.peerMatches(peer, policy, endpoint));
  }

  private peerMatches(peer: Peer, policy: INetworkPolicy, endpoint: Endpoint): boolean {
    if (peer.ipBlock) {
      if (endpoint.kind !== 'external') return false;
      const { cidr, except = [] } = peer.ipBlock;
      return inCidr(endpoint.ip, cidr) && !except.some((excluded) => inCidr(endpoint.ip, excluded));
    }
    if (endpoint.kind !== 'pod') return false;
    if (peer.namespaceSelector) {
      const namespace = this.namespaces.find((ns) => ns.name === endpoint.namespace);
      if (!namespace || !selectorMatches(peer.namespaceSelector, namespace.labels)) return false;
    } else if (endpoint.namespace !== (policy.metadata?.namespace ?? 'default')) {
      // A podSelector alone selects pods in the policy's own namespace.
      return false;
    }
    return peer.podSelector ? selectorMatches(peer.podSelector, endpoint.labels) : true;
  }
}

/** Without policyTypes, Ingress always applies and Egress only when egress rules exist. */
export function policyTypes(policy: INetworkPolicy): string[] {
  return policy.spec?.policyTypes ?? ['Ingress', ...(policy.spec?.egress ? ['Egress'] : [])];
}

export function selectorMatches(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(
    ([key, value]) => labels[key] === value,
  );
  return (
    byLabel &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      const value = labels[key];
      switch (operator) {
        case 'In':
          return value !== undefined && values.includes(value);
        case 'NotIn':
          return value === undefined || !values.includes(value);
        case 'Exists':
          return value !== undefined;
        case 'DoesNotExist':
          return value === undefined;
        default:
          throw new Error(`unknown label selector operator ${operator}`);
      }
    })
  );
}

function portsMatch(rule: Rule, destination: Endpoint, port: number, protocol: Protocol): boolean {
  // An absent or empty ports list means every port and protocol.
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') {
      // A named port is looked up on the destination pod's containers.
      const named =
        destination.kind === 'pod'
          ? destination.ports?.find((c) => c.name === p.port && (c.protocol ?? 'TCP') === protocol)
          : undefined;
      return named?.port === port;
    }
    return p.endPort === undefined ? p.port === port : port >= p.port && port <= p.endPort;
  });
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText ?? '32');
  if (base === undefined || Number.isNaN(bits)) throw new Error(`bad CIDR ${cidr}`);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (ipv4ToNumber(ip) & mask) >>> 0 === (ipv4ToNumber(base) & mask) >>> 0;
}

function ipv4ToNumber(ip: string): number {
  const octets = ip.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new Error(`bad IPv4 address ${ip}`);
  }
  return octets.reduce((n, octet) => n * 256 + octet, 0);
}
