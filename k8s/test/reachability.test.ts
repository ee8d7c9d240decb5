import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { describe, expect, it } from 'vitest';
import { namespaceNameLabel, selectorLabels } from '../names.ts';
import { ofKind, podTemplates, type Synthesized } from './support/manifests.ts';
import { everySynthesis } from './support/variants.ts';
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
  'gateway proxy',
  'ingress controller',
  'other pod, edge ns',
  'prometheus',
  'backend',
  'postgres',
  'backup job',
  'other pod, app ns',
  'pod, default ns',
] as const;
const targets = [
  'backend :3000 http',
  'backend :9464 metrics',
  'postgres :5432',
  'postgres :9187 metrics',
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
  // The gateway's proxies and the ingress controller where the environment says, or where they
  // usually run when it routes through the other one (so the table shows them denied).
  const gatewayNamespace =
    env.expose?.kind === 'gateway' ? env.expose.edge.namespace : 'gateway-system';
  const ingressNamespace =
    env.expose?.kind === 'ingress' ? env.expose.edge.namespace : 'ingress-nginx';
  const namespaceNames = [
    env.namespace,
    gatewayNamespace,
    ingressNamespace,
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
  const backup = fromTemplate('CronJob/tasks-backup');
  const kubeDns = pod('coredns', 'kube-system', { 'k8s-app': 'kube-dns' });
  const from: Record<(typeof sources)[number], Endpoint | undefined> = {
    // The proxies carry the labels the environment narrows to, as the real ones would.
    'gateway proxy': pod('envoy', gatewayNamespace, {
      'app.kubernetes.io/name': 'envoy',
      ...(env.expose?.kind === 'gateway' ? env.expose.edge.podLabels : {}),
    }),
    'ingress controller': pod('controller', ingressNamespace, {
      'app.kubernetes.io/name': 'ingress-nginx',
      ...(env.expose?.kind === 'ingress' ? env.expose.edge.podLabels : {}),
    }),
    'other pod, edge ns': pod(
      'neighbour',
      env.expose?.kind === 'ingress' ? ingressNamespace : gatewayNamespace,
      { app: 'neighbour' },
    ),
    prometheus: pod('prometheus', env.monitoring.namespace, {
      'app.kubernetes.io/name': 'prometheus',
    }),
    backend,
    postgres,
    'backup job': backup,
    'other pod, app ns': pod('debug', env.namespace, { run: 'debug' }),
    'pod, default ns': pod('other', 'default', { app: 'other' }),
  };
  const to: Record<(typeof targets)[number], [Endpoint | undefined, number, Protocol]> = {
    'backend :3000 http': [backend, 3000, 'TCP'],
    'backend :9464 metrics': [backend, 9464, 'TCP'],
    'postgres :5432': [postgres, 5432, 'TCP'],
    'postgres :9187 metrics': [postgres, 9187, 'TCP'],
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

// Columns: http, metrics, postgres, postgres metrics, db:5432, db:6432, neighbour, dns/udp,
// dns/tcp, internet. `edge` is the row of the proxy the environment routes through.
function expected(env: Synthesized['env']): Table {
  const inCluster = env.database.mode === 'in-cluster';
  const hasBackups = env.database.mode === 'in-cluster' && env.database.backup !== undefined;
  const pg = (cell: Cell): Cell => (inCluster ? cell : 'n/a');
  const outside = (http: Cell) =>
    row(http, 'deny', pg('deny'), pg('deny'), '-', '-', '-', '-', '-', '-');
  const denyAll = row(
    'deny',
    'deny',
    pg('deny'),
    pg('deny'),
    'deny',
    'deny',
    'deny',
    'deny',
    'deny',
    'deny',
  );
  return {
    'gateway proxy': outside(env.expose?.kind === 'gateway' ? 'allow' : 'deny'),
    'ingress controller': outside(env.expose?.kind === 'ingress' ? 'allow' : 'deny'),
    // Admitted with the proxies only when the environment does not narrow them by label.
    'other pod, edge ns': outside(
      env.expose && Object.keys(env.expose.edge.podLabels).length === 0 ? 'allow' : 'deny',
    ),
    prometheus: row('deny', 'allow', pg('deny'), pg('allow'), '-', '-', '-', '-', '-', '-'),
    backend: row(
      'deny',
      'deny',
      pg('allow'),
      pg('deny'),
      inCluster ? 'deny' : 'allow',
      'deny',
      'deny',
      'allow',
      'allow',
      'deny',
    ),
    postgres: inCluster
      ? denyAll
      : row('n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'),
    // The backup pods reach PostgreSQL and DNS, nothing else; none without an in-cluster database.
    'backup job': hasBackups
      ? row('deny', 'deny', 'allow', 'deny', 'deny', 'deny', 'deny', 'allow', 'allow', 'deny')
      : row('n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'),
    'other pod, app ns': denyAll,
    'pod, default ns': outside('deny'),
  };
}

describe.each(everySynthesis)('reachability from NetworkPolicies: $label', (synthesized) => {
  const table = reachability(synthesized);
  const { env } = synthesized;

  it('only the backend and the backup pods open PostgreSQL; both reach it and DNS; only the proxy the environment routes through reaches http; monitoring reaches the metrics ports only; everything else is denied', () => {
    console.log(format(env.name, table));
    expect(table).toEqual(expected(env));
  });

  it('egress to the database: the PostgreSQL pods in-cluster (backend and backup pods), only the CIDR and port in external mode', () => {
    const egressOf = (name: string) =>
      ofKind<INetworkPolicy>(synthesized.objects, 'NetworkPolicy')
        .filter((p) => p.metadata?.name === name)
        .flatMap((p) => p.spec?.egress ?? [])
        .filter((rule) => (rule.ports ?? []).every((port) => port.port !== 53));
    const peer =
      env.database.mode === 'external'
        ? { ipBlock: { cidr: env.database.cidr } }
        : { podSelector: { matchLabels: selectorLabels('postgres') } };
    const expected = [{ to: [peer], ports: [{ port: 5432, protocol: 'TCP' }] }];
    expect(egressOf('tasks-backend-egress')).toEqual(expected);
    const backups = env.database.mode === 'in-cluster' && env.database.backup;
    expect(egressOf('tasks-backup-egress')).toEqual(backups ? expected : []);
  });
});
