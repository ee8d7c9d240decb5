import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { describe, expect, it } from 'vitest';
import {
  NetworkPolicyEvaluator,
  inCidr,
  selectorMatches,
  type Connection,
  type Endpoint,
  type NamespaceInfo,
  type PodEndpoint,
} from './support/network-policy-evaluator.ts';

// The evaluator decides what the reachability table shows, so its semantics are tested on their own.

const namespaces: NamespaceInfo[] = [
  { name: 'app', labels: { 'kubernetes.io/metadata.name': 'app', team: 'a' } },
  { name: 'other', labels: { 'kubernetes.io/metadata.name': 'other' } },
];
const web: PodEndpoint = {
  kind: 'pod',
  name: 'web',
  namespace: 'app',
  labels: { role: 'web' },
  ports: [{ name: 'http', port: 8080 }],
};
const db: PodEndpoint = { kind: 'pod', name: 'db', namespace: 'app', labels: { role: 'db' } };
const stranger: PodEndpoint = {
  kind: 'pod',
  name: 'x',
  namespace: 'other',
  labels: { role: 'web' },
};

function policy(name: string, spec: NonNullable<INetworkPolicy['spec']>): INetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: 'app' },
    spec,
  };
}
const tcp = (from: Endpoint, to: Endpoint, port: number): Connection => ({
  from,
  to,
  port,
  protocol: 'TCP',
});

describe('NetworkPolicy evaluator', () => {
  it('when no policy selects a pod, then everything is allowed', () => {
    const evaluator = new NetworkPolicyEvaluator([], namespaces);
    expect(evaluator.allows(tcp(stranger, db, 5432))).toBe(true);
  });

  it('when a default deny selects every pod, then nothing is allowed in either direction', () => {
    const deny = policy('deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const evaluator = new NetworkPolicyEvaluator([deny], namespaces);
    expect(evaluator.allows(tcp(web, db, 5432))).toBe(false);
    expect(evaluator.egressAllows(tcp(web, stranger, 80))).toBe(false);
    expect(evaluator.ingressAllows(tcp(stranger, db, 5432))).toBe(false);
  });

  it('when policyTypes is absent, then a policy without egress rules does not isolate egress', () => {
    const ingressOnly = policy('ingress-only', { podSelector: { matchLabels: { role: 'web' } } });
    const evaluator = new NetworkPolicyEvaluator([ingressOnly], namespaces);
    expect(evaluator.egressAllows(tcp(web, stranger, 443))).toBe(true);
    expect(evaluator.ingressAllows(tcp(stranger, web, 8080))).toBe(false);
  });

  it('when a peer has only a podSelector, then it matches pods in the policy namespace only', () => {
    const fromWeb = policy('db', {
      podSelector: { matchLabels: { role: 'db' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { role: 'web' } } }] }],
    });
    const evaluator = new NetworkPolicyEvaluator([fromWeb], namespaces);
    expect(evaluator.allows(tcp(web, db, 5432))).toBe(true);
    expect(evaluator.allows(tcp(stranger, db, 5432))).toBe(false);
  });

  it('when a peer combines namespace and pod selectors, then both must match', () => {
    const rule = policy('db', {
      podSelector: { matchLabels: { role: 'db' } },
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'other' } },
              podSelector: { matchLabels: { role: 'cron' } },
            },
          ],
        },
      ],
    });
    const evaluator = new NetworkPolicyEvaluator([rule], namespaces);
    expect(evaluator.allows(tcp(stranger, db, 5432))).toBe(false);
    expect(evaluator.allows(tcp({ ...stranger, labels: { role: 'cron' } }, db, 5432))).toBe(true);
  });

  it('when ports are listed, then protocol, number, range and named ports are all honoured', () => {
    const ports = policy('web', {
      podSelector: { matchLabels: { role: 'web' } },
      ingress: [{ ports: [{ port: 'http' }, { port: 9000, endPort: 9010, protocol: 'UDP' }] }],
    });
    const evaluator = new NetworkPolicyEvaluator([ports], namespaces);
    expect(evaluator.allows(tcp(db, web, 8080))).toBe(true);
    expect(evaluator.allows(tcp(db, web, 8081))).toBe(false);
    expect(evaluator.allows({ from: db, to: web, port: 9005, protocol: 'UDP' })).toBe(true);
    expect(evaluator.allows(tcp(db, web, 9005))).toBe(false);
  });

  it('when egress names an ipBlock, then only addresses inside it and outside except match', () => {
    const egress = policy('web', {
      podSelector: { matchLabels: { role: 'web' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/24', except: ['10.0.0.128/25'] } }] }],
    });
    const evaluator = new NetworkPolicyEvaluator([egress], namespaces);
    const at = (ip: string): Endpoint => ({ kind: 'external', name: ip, ip });
    expect(evaluator.allows(tcp(web, at('10.0.0.5'), 5432))).toBe(true);
    expect(evaluator.allows(tcp(web, at('10.0.0.200'), 5432))).toBe(false);
    expect(evaluator.allows(tcp(web, at('10.0.1.5'), 5432))).toBe(false);
    expect(evaluator.allows(tcp(web, db, 5432))).toBe(false);
  });

  it('matchExpressions support In, NotIn, Exists and DoesNotExist', () => {
    const labels = { tier: 'api', env: 'prod' };
    const match = (operator: string, key: string, values?: string[]) =>
      selectorMatches({ matchExpressions: [{ key, operator, values }] }, labels);
    expect([match('In', 'tier', ['api']), match('In', 'tier', ['db'])]).toEqual([true, false]);
    expect([match('NotIn', 'tier', ['db']), match('NotIn', 'tier', ['api'])]).toEqual([
      true,
      false,
    ]);
    expect([match('NotIn', 'absent', ['x'])]).toEqual([true]);
    expect([match('Exists', 'env'), match('Exists', 'absent')]).toEqual([true, false]);
    expect([match('DoesNotExist', 'absent'), match('DoesNotExist', 'env')]).toEqual([true, false]);
    expect(selectorMatches({}, labels)).toBe(true);
  });

  it('CIDR arithmetic covers /32, /0 and boundaries', () => {
    expect(inCidr('10.20.0.15', '10.20.0.15/32')).toBe(true);
    expect(inCidr('10.20.0.16', '10.20.0.15/32')).toBe(false);
    expect(inCidr('203.0.113.9', '0.0.0.0/0')).toBe(true);
    expect(inCidr('192.168.1.255', '192.168.0.0/23')).toBe(true);
    expect(inCidr('192.168.2.0', '192.168.0.0/23')).toBe(false);
  });
});
