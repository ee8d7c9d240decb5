/**
 * PostgreSQL refuses connections past `max_connections`, and every backend replica may hold a full
 * pool, plus the one connection its readiness probe keeps apart from the pool (backend/src/db.ts).
 * The worst moment is a rollout at the autoscaler's ceiling: maxReplicas + maxSurge pods at once.
 */

/** Connections a replica holds beside its pool: the readiness probe's own. */
export const PROBE_CONNECTIONS_PER_REPLICA = 1;

export interface ConnectionBudget {
  readonly maxReplicas: number;
  readonly maxSurge: number;
  readonly poolMax: number;
  readonly reservedConnections: number;
  readonly maxConnections: number;
  /** Where maxConnections came from, for the error message. */
  readonly maxConnectionsSource: string;
}

/** Returns an explanation when the budget is exceeded, undefined when it fits. */
export function connectionBudgetProblem(budget: ConnectionBudget): string | undefined {
  const { maxReplicas, maxSurge, poolMax, reservedConnections, maxConnections } = budget;
  const perReplica = poolMax + PROBE_CONNECTIONS_PER_REPLICA;
  const needed = (maxReplicas + maxSurge) * perReplica + reservedConnections;
  if (needed < maxConnections) return undefined;
  return (
    `connection budget exceeded: (maxReplicas ${maxReplicas} + maxSurge ${maxSurge})` +
    ` x (pool ${poolMax} + probe ${PROBE_CONNECTIONS_PER_REPLICA})` +
    ` + reserve ${reservedConnections} = ${needed}, which is not below max_connections ${maxConnections}` +
    ` (${budget.maxConnectionsSource}). Lower the replicas, surge or pool size, or raise max_connections.`
  );
}

/** The part of a synthesized StatefulSet the checks read. */
export interface StatefulSetArgs {
  readonly spec?: {
    readonly template?: {
      readonly spec?: {
        readonly containers?: readonly {
          readonly name?: string;
          readonly args?: readonly string[];
          readonly command?: readonly string[];
          readonly resources?: { readonly limits?: Readonly<Record<string, unknown>> };
        }[];
      };
    };
  };
}

/** The container that runs the server: the one named `postgres`. */
export function postgresContainerFromStatefulSet(statefulSet: StatefulSetArgs) {
  return statefulSet.spec?.template?.spec?.containers?.find((c) => c.name === 'postgres');
}

/**
 * Every `-c name=value` the postgres container is started with, so the checks see exactly what the
 * server will run with rather than a value copied beside it.
 */
export function serverSettingsFromStatefulSet(statefulSet: StatefulSetArgs): Map<string, string> {
  const settings = new Map<string, string>();
  for (const container of statefulSet.spec?.template?.spec?.containers ?? []) {
    const argv = [...(container.command ?? []), ...(container.args ?? [])];
    for (const [i, arg] of argv.entries()) {
      const setting = arg === '-c' ? argv[i + 1] : arg.startsWith('-c') ? arg.slice(2) : undefined;
      const match = setting === undefined ? null : /^([a-z_]+)=(.*)$/.exec(setting);
      if (match?.[1] !== undefined && match[2] !== undefined) settings.set(match[1], match[2]);
    }
  }
  return settings;
}

/** `-c max_connections=N` from a synthesized StatefulSet, or undefined when it is not set. */
export function maxConnectionsFromStatefulSet(statefulSet: StatefulSetArgs): number | undefined {
  const value = serverSettingsFromStatefulSet(statefulSet).get('max_connections');
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}
