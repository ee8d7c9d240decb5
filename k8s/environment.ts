import { backendNames } from './names.ts';

/**
 * The Helm-free "values": what may differ between environments, typed, with defaults in one place.
 * Environment files (k8s/environments/*.ts) set these; `resolveEnvironment` fills the defaults and
 * refuses settings that must never reach a cluster, so the charts only ever see checked values.
 */

export interface ImageSettings {
  /** e.g. `ghcr.io/acme/tasks-backend` */
  readonly repository: string;
  /** An immutable tag. `latest` and empty tags fail synth. Overridden by `IMAGE_TAG` at synth time. */
  readonly tag: string;
}

export interface ContainerResources {
  readonly cpuRequestMillis: number;
  readonly cpuLimitMillis: number;
  readonly memoryRequestMiB: number;
  readonly memoryLimitMiB: number;
}

export interface AutoscalingSettings {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** @default 70 */
  readonly targetCpuUtilizationPercent?: number;
}

export interface BackendSettings {
  /** Fixed replica count; ignored when `autoscaling` is set. @default 1 */
  readonly replicas?: number;
  /** Adds a HorizontalPodAutoscaler (autoscaling/v2) between these bounds. @default - no autoscaler */
  readonly autoscaling?: AutoscalingSettings;
  /** Extra pods a rolling update may start (absolute; counted by the connection budget). @default 1 */
  readonly maxSurge?: number;
  readonly resources: ContainerResources;
  /** DATABASE_POOL_MAX: connections each replica may open. @default 10 */
  readonly poolMax?: number;
  /** LOG_LEVEL @default 'info' */
  readonly logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** TRUST_PROXY: number of proxy hops in front of the pods (the ingress controller). @default '1' */
  readonly trustProxy?: string;
  /** SHUTDOWN_DELAY_MS: keep serving after SIGTERM while endpoints are removed. @default 5000 */
  readonly shutdownDelayMs?: number;
  /** SHUTDOWN_TIMEOUT_MS: then wait this long for in-flight requests. @default 10000 */
  readonly shutdownTimeoutMs?: number;
}

export interface InClusterDatabase {
  readonly mode: 'in-cluster';
  /** A pinned tag of the official image; its PGDATA layout changes at 18. @default 'postgres:16-bookworm' */
  readonly image?: string;
  /** PersistentVolumeClaim size, e.g. `10Gi`. */
  readonly storageSize: string;
  /** @default - the cluster's default StorageClass */
  readonly storageClassName?: string;
  readonly resources: ContainerResources;
  /** Written into the StatefulSet's args; the connection budget is checked against it. @default 100 */
  readonly maxConnections?: number;
  /** Connections kept free for superusers, psql sessions and monitoring. @default 10 */
  readonly reservedConnections?: number;
}

export interface ExternalDatabase {
  readonly mode: 'external';
  /** The managed database's address as a CIDR (a /32 for one IP); backend egress is limited to it. */
  readonly cidr: string;
  /** @default 5432 */
  readonly port?: number;
  /** The server's `max_connections`, as configured at the provider: the budget is checked against it. */
  readonly maxConnections: number;
  /** Connections kept free for the provider's own agents, superusers and migrations by hand. @default 10 */
  readonly reservedConnections?: number;
}

export interface EnvironmentSettings {
  /** Folder name under k8s/dist/. */
  readonly name: string;
  readonly namespace: string;
  readonly image: ImageSettings;
  readonly backend: BackendSettings;
  readonly database: InClusterDatabase | ExternalDatabase;
  /** @default 'ingress-nginx' */
  readonly ingressControllerNamespace?: string;
  /** Emits an Ingress for this host. @default - no Ingress (use port-forward) */
  readonly ingress?: {
    readonly host: string;
    /** @default 'nginx' */
    readonly className?: string;
    /** A kubernetes.io/tls Secret for the host. @default - plain HTTP */
    readonly tlsSecretName?: string;
  };
  readonly monitoring?: {
    /** Namespace Prometheus scrapes from; the only one allowed to reach the metrics port. @default 'monitoring' */
    readonly namespace?: string;
    /**
     * Emit prometheus-operator objects (ServiceMonitor). `releaseLabel` is the `release` label the
     * operator's serviceMonitorSelector expects (kube-prometheus-stack: its Helm release name).
     * @default - annotations only
     */
    readonly prometheusOperator?: {
      readonly releaseLabel: string;
      /**
       * The Grafana dashboard (monitoring/grafana/tasks-backend.json) as a ConfigMap for Grafana's
       * dashboard sidecar. kube-prometheus-stack's sidecar (chart 45.12 and later) watches every
       * namespace for `grafana_dashboard: "1"`; a Grafana that searches only its own namespace needs
       * `namespace` set to it. `false` leaves the ConfigMap out.
       * @default { namespace: the environment's namespace, labelName: 'grafana_dashboard', labelValue: '1' }
       */
      readonly grafanaDashboard?:
        | false
        | {
            readonly namespace?: string;
            readonly labelName?: string;
            readonly labelValue?: string;
          };
    };
  };
}

/** Where and how the Grafana dashboard ConfigMap is emitted. */
export interface GrafanaDashboardSettings {
  readonly namespace: string;
  readonly labelName: string;
  readonly labelValue: string;
}

/** An environment with every default filled in and every rule checked. */
export interface Environment {
  readonly name: string;
  readonly namespace: string;
  readonly image: ImageSettings & { readonly reference: string };
  readonly backend: {
    readonly replicas: number;
    readonly autoscaling:
      | {
          readonly minReplicas: number;
          readonly maxReplicas: number;
          readonly targetCpuUtilizationPercent: number;
        }
      | undefined;
    readonly maxSurge: number;
    readonly resources: ContainerResources;
    readonly poolMax: number;
    readonly logLevel: NonNullable<BackendSettings['logLevel']>;
    readonly trustProxy: string;
    readonly shutdownDelayMs: number;
    readonly shutdownTimeoutMs: number;
  };
  readonly database:
    | (Required<Omit<InClusterDatabase, 'storageClassName'>> & {
        readonly storageClassName: string | undefined;
      })
    | Required<ExternalDatabase>;
  readonly ingressControllerNamespace: string;
  readonly ingress:
    | {
        readonly host: string;
        readonly className: string;
        readonly tlsSecretName: string | undefined;
      }
    | undefined;
  readonly monitoring: {
    readonly namespace: string;
    readonly prometheusOperator:
      | {
          readonly releaseLabel: string;
          readonly grafanaDashboard: GrafanaDashboardSettings | undefined;
        }
      | undefined;
  };
}

export class EnvironmentError extends Error {
  constructor(
    readonly environment: string,
    readonly problems: readonly string[],
  ) {
    super(`environment "${environment}" is invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'EnvironmentError';
  }
}

export interface SynthOverrides {
  /** From `IMAGE_TAG` at synth time; an empty string is an error, not "use the default". */
  readonly imageTag?: string | undefined;
}

export function resolveEnvironment(
  settings: EnvironmentSettings,
  overrides: SynthOverrides = {},
): Environment {
  const tag = overrides.imageTag ?? settings.image.tag;
  const b = settings.backend;
  const db = settings.database;
  const env: Environment = {
    name: settings.name,
    namespace: settings.namespace,
    image: { ...settings.image, tag, reference: `${settings.image.repository}:${tag}` },
    backend: {
      replicas: b.replicas ?? 1,
      autoscaling: b.autoscaling && {
        minReplicas: b.autoscaling.minReplicas,
        maxReplicas: b.autoscaling.maxReplicas,
        targetCpuUtilizationPercent: b.autoscaling.targetCpuUtilizationPercent ?? 70,
      },
      maxSurge: b.maxSurge ?? 1,
      resources: b.resources,
      poolMax: b.poolMax ?? 10,
      logLevel: b.logLevel ?? 'info',
      trustProxy: b.trustProxy ?? '1',
      shutdownDelayMs: b.shutdownDelayMs ?? 5000,
      shutdownTimeoutMs: b.shutdownTimeoutMs ?? 10_000,
    },
    database:
      db.mode === 'in-cluster'
        ? {
            mode: 'in-cluster',
            image: db.image ?? 'postgres:16-bookworm',
            storageSize: db.storageSize,
            storageClassName: db.storageClassName,
            resources: db.resources,
            maxConnections: db.maxConnections ?? 100,
            reservedConnections: db.reservedConnections ?? 10,
          }
        : {
            mode: 'external',
            cidr: db.cidr,
            port: db.port ?? 5432,
            maxConnections: db.maxConnections,
            reservedConnections: db.reservedConnections ?? 10,
          },
    ingressControllerNamespace: settings.ingressControllerNamespace ?? 'ingress-nginx',
    ingress: settings.ingress && {
      host: settings.ingress.host,
      className: settings.ingress.className ?? 'nginx',
      tlsSecretName: settings.ingress.tlsSecretName,
    },
    monitoring: {
      namespace: settings.monitoring?.namespace ?? 'monitoring',
      prometheusOperator: resolvePrometheusOperator(settings),
    },
  };
  const problems = environmentProblems(env);
  if (problems.length > 0) throw new EnvironmentError(env.name, problems);
  return env;
}

function resolvePrometheusOperator(
  settings: EnvironmentSettings,
): Environment['monitoring']['prometheusOperator'] {
  const operator = settings.monitoring?.prometheusOperator;
  if (!operator) return undefined;
  const dashboard = operator.grafanaDashboard ?? {};
  return {
    releaseLabel: operator.releaseLabel,
    grafanaDashboard:
      dashboard === false
        ? undefined
        : {
            namespace: dashboard.namespace ?? settings.namespace,
            labelName: dashboard.labelName ?? 'grafana_dashboard',
            labelValue: dashboard.labelValue ?? '1',
          },
  };
}

/** Rules a reviewer would otherwise have to remember. The connection budget is checked separately,
 * against the synthesized StatefulSet (see connection-budget.ts). */
function environmentProblems(env: Environment): string[] {
  const problems: string[] = [];
  const { tag } = env.image;
  if (tag.trim() === '') {
    problems.push('image tag is empty (set image.tag or IMAGE_TAG to an immutable tag)');
  } else if (tag.toLowerCase() === 'latest') {
    problems.push(`image tag "${tag}" is mutable: pin a version so every pod runs the same code`);
  } else if (!/^\w[\w.-]{0,127}$/.test(tag)) {
    problems.push(`image tag "${tag}" is not a valid image tag`);
  }
  const { autoscaling, resources, shutdownDelayMs } = env.backend;
  if (
    autoscaling &&
    (autoscaling.minReplicas < 1 || autoscaling.maxReplicas < autoscaling.minReplicas)
  ) {
    problems.push(
      `autoscaling bounds ${autoscaling.minReplicas}..${autoscaling.maxReplicas} are not 1 <= min <= max`,
    );
  }
  if (env.backend.replicas < 1) problems.push('backend.replicas must be at least 1');
  if (env.backend.maxSurge < 1) {
    // maxUnavailable is 0, so a rollout with no surge could never make progress.
    problems.push('backend.maxSurge must be at least 1 because maxUnavailable is 0');
  }
  for (const [what, r] of [
    ['backend', resources],
    ['database', env.database.mode === 'in-cluster' ? env.database.resources : undefined],
  ] as const) {
    if (!r) continue;
    if (r.cpuRequestMillis > r.cpuLimitMillis || r.memoryRequestMiB > r.memoryLimitMiB) {
      problems.push(`${what} resources: a request is above its limit`);
    }
  }
  const { readinessPeriodSeconds } = backendNames;
  if (shutdownDelayMs < readinessPeriodSeconds * 1000) {
    // Endpoint removal races SIGTERM; serving on for one readiness period covers the race.
    problems.push(
      `backend.shutdownDelayMs ${shutdownDelayMs} is shorter than the readiness period (${readinessPeriodSeconds * 1000} ms)`,
    );
  }
  if (env.backend.shutdownTimeoutMs < 0)
    problems.push('backend.shutdownTimeoutMs must not be negative');
  if (env.database.mode === 'external' && !isCidr(env.database.cidr)) {
    problems.push(`database.cidr "${env.database.cidr}" is not an IPv4 CIDR such as 10.0.0.5/32`);
  }
  return problems;
}

function isCidr(value: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (!match) return false;
  const [, a, b, c, d, bits] = match.map(Number);
  return (
    [a, b, c, d].every((octet) => octet !== undefined && octet <= 255) &&
    bits !== undefined &&
    bits <= 32
  );
}
