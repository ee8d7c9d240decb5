import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { describe, expect, it } from 'vitest';
import { namespaceNameLabel, selectorLabels } from '../names.ts';
import {
  ofKind,
  podTemplates,
  synthesizedEnvironments,
  type Synthesized,
} from './support/manifests.ts';
import {
  NetworkPolicyEvaluator,
  type Endpoint,
  type PodEndpoint,
  type Protocol,
} from './support/network-policy-evaluator.ts';

// Who can open which port, computed from the synthesized NetworkPolicies alone. Cells:
// allow / deny; "-" when neither end is in the app's namespace (these policies do not govern it);
// "n/a" when the environment has no such pod.

type Cell = 'allow' | 'deny' | '-' | 'n/a';
const sources = [
  'ingress controller',
  'prometheus',
  'backend',
  'postgres',
  'other pod, app ns',
  'pod, default ns',
] as const;
const targets = [
  'backend :3000 http',
  'backend :9464 metrics',
  'postgres :5432',
  'database address :5432',
  'database address :6432',
  'neighbour address :5432',
  'kube-dns :53/UDP',
  'kube-dns :53/TCP',
  'internet :443',
] as const;
type Table = Record<(typeof sources)[number], Record<(typeof targets)[number], Cell>>;

/** The external database's address (first address of its CIDR); in-cluster mode probes a made-up one. */
function databaseIp(env: Synthesized['env']): string {
  return env.database.mode === 'external' ? (env.database.cidr.split('/')[0] ?? '') : '10.20.0.15';
}

function reachability({ env, objects }: Synthesized): Table {
  const policies = ofKind<INetworkPolicy>(objects, 'NetworkPolicy');
  const namespaceNames = [
    env.namespace,
    env.ingressControllerNamespace,
    env.monitoring.namespace,
    'kube-system',
    'default',
  ];
  const evaluator = new NetworkPolicyEvaluator(
    policies,
    namespaceNames.map((name) => ({ name, labels: { [namespaceNameLabel]: name } })),
  );
  const fromTemplate = (owner: string): PodEndpoint | undefined => {
    const t = podTemplates(objects).find((p) => p.owner === owner);
    return (
      t && {
        kind: 'pod',
        name: owner,
        namespace: t.namespace,
        labels: t.labels,
        ports: t.containers.flatMap((c) =>
          (c.ports ?? []).map((p) => ({
            name: p.name ?? '',
            port: p.containerPort,
            protocol: p.protocol ?? 'TCP',
          })),
        ),
      }
    );
  };
  const pod = (name: string, namespace: string, labels: Record<string, string>): PodEndpoint => ({
    kind: 'pod',
    name,
    namespace,
    labels,
  });
  const external = (ip: string): Endpoint => ({ kind: 'external', name: ip, ip });

  const backend = fromTemplate('Deployment/tasks-backend');
  const postgres = fromTemplate('StatefulSet/tasks-postgres');
  const kubeDns = pod('coredns', 'kube-system', { 'k8s-app': 'kube-dns' });
  const from: Record<(typeof sources)[number], Endpoint | undefined> = {
    'ingress controller': pod('controller', env.ingressControllerNamespace, {
      'app.kubernetes.io/name': 'ingress-nginx',
    }),
    prometheus: pod('prometheus', env.monitoring.namespace, {
      'app.kubernetes.io/name': 'prometheus',
    }),
    backend,
    postgres,
    'other pod, app ns': pod('debug', env.namespace, { run: 'debug' }),
    'pod, default ns': pod('other', 'default', { app: 'other' }),
  };
  const to: Record<(typeof targets)[number], [Endpoint | undefined, number, Protocol]> = {
    'backend :3000 http': [backend, 3000, 'TCP'],
    'backend :9464 metrics': [backend, 9464, 'TCP'],
    'postgres :5432': [postgres, 5432, 'TCP'],
    'database address :5432': [external(databaseIp(env)), 5432, 'TCP'],
    'database address :6432': [external(databaseIp(env)), 6432, 'TCP'],
    'neighbour address :5432': [external('10.20.0.16'), 5432, 'TCP'],
    'kube-dns :53/UDP': [kubeDns, 53, 'UDP'],
    'kube-dns :53/TCP': [kubeDns, 53, 'TCP'],
    'internet :443': [external('1.1.1.1'), 443, 'TCP'],
  };
  const inApp = (e: Endpoint) => e.kind === 'pod' && e.namespace === env.namespace;
  const table = {} as Table;
  for (const source of sources) {
    table[source] = {} as Table[typeof source];
    for (const target of targets) {
      const [destination, port, protocol] = to[target];
      const origin = from[source];
      let cell: Cell;
      if (!origin || !destination) cell = 'n/a';
      else if (!inApp(origin) && !inApp(destination)) cell = '-';
      else
        cell = evaluator.allows({ from: origin, to: destination, port, protocol })
          ? 'allow'
          : 'deny';
      table[source][target] = cell;
    }
  }
  return table;
}

function format(name: string, table: Table): string {
  const header = ['from \\ to', ...targets];
  const rows = sources.map((source) => [source, ...targets.map((t) => table[source][t])]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    `reachability, environment ${name}:`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}

const row = (...cells: Cell[]): Record<(typeof targets)[number], Cell> =>
  Object.fromEntries(targets.map((t, i) => [t, cells[i]])) as Record<
    (typeof targets)[number],
    Cell
  >;

// Columns: http, metrics, postgres, db:5432, db:6432, neighbour, dns/udp, dns/tcp, internet.
const expectedInCluster: Table = {
  'ingress controller': row('allow', 'deny', 'deny', '-', '-', '-', '-', '-', '-'),
  prometheus: row('deny', 'allow', 'deny', '-', '-', '-', '-', '-', '-'),
  backend: row('deny', 'deny', 'allow', 'deny', 'deny', 'deny', 'allow', 'allow', 'deny'),
  postgres: row('deny', 'deny', 'deny', 'deny', 'deny', 'deny', 'deny', 'deny', 'deny'),
  'other pod, app ns': row('deny', 'deny', 'deny', 'deny', 'deny', 'deny', 'deny', 'deny', 'deny'),
  'pod, default ns': row('deny', 'deny', 'deny', '-', '-', '-', '-', '-', '-'),
};
const expectedExternal: Table = {
  'ingress controller': row('allow', 'deny', 'n/a', '-', '-', '-', '-', '-', '-'),
  prometheus: row('deny', 'allow', 'n/a', '-', '-', '-', '-', '-', '-'),
  backend: row('deny', 'deny', 'n/a', 'allow', 'deny', 'deny', 'allow', 'allow', 'deny'),
  postgres: row('n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'),
  'other pod, app ns': row('deny', 'deny', 'n/a', 'deny', 'deny', 'deny', 'deny', 'deny', 'deny'),
  'pod, default ns': row('deny', 'deny', 'n/a', '-', '-', '-', '-', '-', '-'),
};

describe.each(synthesizedEnvironments)(
  'reachability from NetworkPolicies: $env.name',
  (synthesized) => {
    const table = reachability(synthesized);
    const { env } = synthesized;

    it('only the backend opens PostgreSQL; the backend reaches PostgreSQL and DNS; ingress reaches http, monitoring metrics only; everything else is denied', () => {
      console.log(format(env.name, table));
      expect(table).toEqual(
        env.database.mode === 'in-cluster' ? expectedInCluster : expectedExternal,
      );
    });

    it('backend egress to the database: the PostgreSQL pods in-cluster, only the CIDR and port in external mode', () => {
      const egress = ofKind<INetworkPolicy>(synthesized.objects, 'NetworkPolicy').flatMap(
        (p) => p.spec?.egress ?? [],
      );
      const toDatabase = egress.filter((rule) =>
        (rule.ports ?? []).every((port) => port.port !== 53),
      );
      const peer =
        env.database.mode === 'external'
          ? { ipBlock: { cidr: env.database.cidr } }
          : { podSelector: { matchLabels: selectorLabels('postgres') } };
      expect(toDatabase).toEqual([{ to: [peer], ports: [{ port: 5432, protocol: 'TCP' }] }]);
    });
  },
);
