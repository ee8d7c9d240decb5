import { backupIntervalSeconds } from './backup-schedule.ts';
import { backendNames, requiredSecretKeys } from './names.ts';
import { exactMinorPostgresImage, pinnedPostgresImage } from './postgres-image.ts';
import { derivePostgresMemory, type PostgresMemorySettings } from './postgres-memory.ts';

/**
 * The Helm-free "values": what may differ between environments, typed, with defaults in one place.
 * Environment files (k8s/environments/*.ts) set these; synth-time variables (k8s/synth-settings.ts)
 * override some of them; `resolveEnvironment` fills the defaults and refuses settings that must
 * never reach a cluster, so the charts only ever see checked values.
 */

export interface ImageSettings {
  /** e.g. `ghcr.io/acme/tasks-backend`. Overridden by `IMAGE_REPOSITORY` at synth time. */
  readonly repository: string;
  /** An immutable tag. `latest` and empty tags fail synth. Overridden by `IMAGE_TAG` at synth time. */
  readonly tag: string;
  /**
   * `kubernetes.io/dockerconfigjson` Secrets in the namespace for a private registry. Overridden by
   * `IMAGE_PULL_SECRETS`. @default - none (a public image)
   */
  readonly pullSecrets?: readonly string[];
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
  /** TRUST_PROXY: number of proxy hops in front of the pods (the gateway or ingress). @default '1' */
  readonly trustProxy?: string;
  /** SHUTDOWN_DELAY_MS: keep serving after SIGTERM while endpoints are removed. @default 5000 */
  readonly shutdownDelayMs?: number;
  /** SHUTDOWN_TIMEOUT_MS: then wait this long for in-flight requests. @default 10000 */
  readonly shutdownTimeoutMs?: number;
}

export interface BackupSettings {
  /**
   * When the CronJob runs, in `timeZone`. A regular schedule (`M * * * *`, `*\/N * * * *`,
   * `M *\/N * * *`, `M H * * *`, `@hourly`, `@daily`), so the freshness alert can derive the interval.
   * @default '17 * * * *' (hourly, as the VPS: a lost hour of writes at most)
   */
  readonly schedule?: string;
  /** @default 'Etc/UTC' */
  readonly timeZone?: string;
  /** BACKUP_KEEP: dumps kept on the backup volume; older ones are deleted after a new one verified. @default 48 */
  readonly keep?: number;
  /** The backup volume (its own claim, applied once). @default - the database's storageSize */
  readonly storageSize?: string;
  /** @default - the cluster's default StorageClass */
  readonly storageClassName?: string;
  /** @default 100m/500m CPU, 256/256 MiB */
  readonly resources?: ContainerResources;
}

export interface InClusterDatabase {
  readonly mode: 'in-cluster';
  /**
   * An exact minor of the official image; its PGDATA layout changes at 18.
   * @default - `x-postgres-image` of docker-compose.yml (the one pin compose and Kubernetes share)
   */
  readonly image?: string;
  /** PersistentVolumeClaim size, e.g. `10Gi`. */
  readonly storageSize: string;
  /** @default - the cluster's default StorageClass */
  readonly storageClassName?: string;
  readonly resources: ContainerResources;
  /** Written into the StatefulSet's args; the connection budget is checked against it. @default 100 */
  readonly maxConnections?: number;
  /** Connections kept free for superusers, psql, the exporter and the backup job. @default 10 */
  readonly reservedConnections?: number;
  /**
   * Memory settings in MiB; each one left out is derived from the memory limit (postgres-memory.ts).
   * Synth checks the result against the limit either way. @default - all derived
   */
  readonly memory?: Partial<PostgresMemorySettings>;
  /** The postgres_exporter sidecar's image. @default quay.io/prometheuscommunity/postgres-exporter:v0.18.1 */
  readonly exporterImage?: string;
  /** Scheduled dumps with the same script as the VPS (backup/backup.sh). `false` leaves them out. @default {} */
  readonly backup?: BackupSettings | false;
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

/** Pods that may open the backend's http port: the gateway's proxies or the ingress controller. */
export interface EdgePods {
  /** The namespace they run in. */
  readonly namespace?: string;
  /** Narrows the allowed pods within that namespace. @default - every pod of the namespace */
  readonly podLabels?: Readonly<Record<string, string>>;
}

/** An HTTPRoute (gateway.networking.k8s.io/v1) attached to a Gateway the platform team owns. */
export interface GatewayExposure {
  readonly kind: 'gateway';
  readonly host: string;
  readonly gateway: {
    readonly name: string;
    readonly namespace: string;
    /** The listener to attach to (e.g. the HTTPS one). @default - every listener that allows the route */
    readonly sectionName?: string;
  };
  /**
   * Where the Gateway's data-plane pods run. Istio and NGINX Gateway Fabric put them beside the
   * Gateway; Envoy Gateway, by default, in its own namespace (envoy-gateway-system).
   * @default { namespace: gateway.namespace }
   */
  readonly proxies?: EdgePods;
}

/** A networking.k8s.io/v1 Ingress, for clusters whose controller does not speak the Gateway API yet. */
export interface IngressExposure {
  readonly kind: 'ingress';
  readonly host: string;
  /** @default - the cluster's default IngressClass */
  readonly className?: string;
  /** e.g. `cert-manager.io/cluster-issuer`, the controller's timeouts. @default {} */
  readonly annotations?: Readonly<Record<string, string>>;
  /** A kubernetes.io/tls Secret for the host (cert-manager can create it). @default - plain HTTP */
  readonly tlsSecretName?: string;
  /** @default { namespace: 'ingress-nginx' } */
  readonly controller?: EdgePods;
}

/** Where the `tasks-db` Secret comes from. */
export type SecretSource =
  | { readonly source: 'manual' }
  | {
      /** External Secrets Operator copies the keys from a store (Vault, a cloud secret manager...). */
      readonly source: 'external-secrets';
      readonly store: {
        readonly kind: 'SecretStore' | 'ClusterSecretStore';
        readonly name: string;
      };
      /** The remote secret: one object whose properties are the Secret's keys. */
      readonly remoteKey: string;
      /** @default '1h' */
      readonly refreshInterval?: string;
    }
  | {
      /** A SealedSecret: values encrypted for this namespace and name with `kubeseal --raw`. */
      readonly source: 'sealed-secrets';
      readonly encryptedData: Readonly<Record<string, string>>;
    };

export interface EnvironmentSettings {
  /** Folder name under k8s/dist/. */
  readonly name: string;
  readonly namespace: string;
  readonly image: ImageSettings;
  readonly backend: BackendSettings;
  readonly database: InClusterDatabase | ExternalDatabase;
  /** How clients reach the API. @default - not exposed (kubectl port-forward) */
  readonly expose?: GatewayExposure | IngressExposure;
  /** @default { source: 'manual' }: create `tasks-db` by hand (k8s/README.md) */
  readonly secret?: SecretSource;
  readonly monitoring?: {
    /** Namespace Prometheus scrapes from; the only one allowed to reach the metrics ports. @default 'monitoring' */
    readonly namespace?: string;
    /**
     * Emit prometheus-operator objects (ServiceMonitors, PrometheusRule). `releaseLabel` is the
     * `release` label the operator's selectors expect (kube-prometheus-stack: its Helm release name).
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

export const defaultExporterImage = 'quay.io/prometheuscommunity/postgres-exporter:v0.18.1';
export const defaultBackupSchedule = '17 * * * *';

export interface ResolvedBackup {
  readonly schedule: string;
  readonly timeZone: string;
  readonly intervalSeconds: number;
  readonly keep: number;
  readonly storageSize: string;
  readonly storageClassName: string | undefined;
  readonly resources: ContainerResources;
}

export interface ResolvedInClusterDatabase {
  readonly mode: 'in-cluster';
  readonly image: string;
  readonly storageSize: string;
  readonly storageClassName: string | undefined;
  readonly resources: ContainerResources;
  readonly maxConnections: number;
  readonly reservedConnections: number;
  readonly memory: PostgresMemorySettings;
  readonly exporterImage: string;
  readonly backup: ResolvedBackup | undefined;
}

export type ResolvedExposure =
  | {
      readonly kind: 'gateway';
      readonly host: string;
      readonly gateway: {
        readonly name: string;
        readonly namespace: string;
        readonly sectionName: string | undefined;
      };
      readonly edge: Required<EdgePods>;
    }
  | {
      readonly kind: 'ingress';
      readonly host: string;
      readonly className: string | undefined;
      readonly annotations: Readonly<Record<string, string>>;
      readonly tlsSecretName: string | undefined;
      readonly edge: Required<EdgePods>;
    };

export type ResolvedSecretSource =
  | { readonly source: 'manual' }
  | (Extract<SecretSource, { source: 'external-secrets' }> & { readonly refreshInterval: string })
  | Extract<SecretSource, { source: 'sealed-secrets' }>;

/** An environment with every default filled in and every rule checked. */
export interface Environment {
  readonly name: string;
  readonly namespace: string;
  readonly image: {
    readonly repository: string;
    readonly tag: string;
    readonly pullSecrets: readonly string[];
    readonly reference: string;
  };
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
  readonly database: ResolvedInClusterDatabase | Required<ExternalDatabase>;
  readonly expose: ResolvedExposure | undefined;
  readonly secret: ResolvedSecretSource;
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

/**
 * Settings given at synth time (from the environment variables k8s/synth-settings.ts reads). Each
 * one replaces the environment file's value; an empty string is an error, never "use the default".
 */
export interface SynthOverrides {
  readonly imageRepository?: string;
  readonly imageTag?: string;
  readonly imagePullSecrets?: readonly string[];
  readonly namespace?: string;
  readonly expose?: 'gateway' | 'ingress' | 'none';
  readonly host?: string;
  readonly gatewayName?: string;
  readonly gatewayNamespace?: string;
  readonly gatewaySection?: string;
  readonly gatewayProxyNamespace?: string;
  readonly ingressClass?: string;
  readonly ingressAnnotations?: Readonly<Record<string, string>>;
  readonly ingressControllerNamespace?: string;
  readonly tlsSecret?: string;
  readonly monitoringNamespace?: string;
  readonly prometheusRelease?: string;
  readonly secretSource?: SecretSource['source'];
  readonly secretStore?: {
    readonly kind: 'SecretStore' | 'ClusterSecretStore';
    readonly name: string;
  };
  readonly secretRemoteKey?: string;
  readonly sealedSecrets?: Readonly<Record<string, string>>;
}

/** The environment file's settings with the synth-time overrides applied; problems for gaps. */
export function applyOverrides(
  settings: EnvironmentSettings,
  o: SynthOverrides,
  problems: string[],
): EnvironmentSettings {
  const image: ImageSettings = {
    repository: o.imageRepository ?? settings.image.repository,
    tag: o.imageTag ?? settings.image.tag,
    pullSecrets: o.imagePullSecrets ?? settings.image.pullSecrets,
  };

  let expose = settings.expose;
  const kind = o.expose ?? expose?.kind ?? 'none';
  if (kind === 'none') {
    expose = undefined;
  } else {
    const host = o.host ?? expose?.host;
    if (host === undefined) problems.push(`expose: ${kind} needs a host (K8S_HOST)`);
    if (kind === 'gateway') {
      const current = expose?.kind === 'gateway' ? expose : undefined;
      const name = o.gatewayName ?? current?.gateway.name;
      const namespace = o.gatewayNamespace ?? current?.gateway.namespace;
      if (name === undefined || namespace === undefined) {
        problems.push(
          'expose: gateway needs the Gateway to attach to (K8S_GATEWAY_NAME and K8S_GATEWAY_NAMESPACE)',
        );
      }
      expose = {
        kind,
        host: host ?? '',
        gateway: {
          name: name ?? '',
          namespace: namespace ?? '',
          sectionName: o.gatewaySection ?? current?.gateway.sectionName,
        },
        proxies: {
          ...current?.proxies,
          ...(o.gatewayProxyNamespace !== undefined && { namespace: o.gatewayProxyNamespace }),
        },
      };
    } else {
      const current = expose?.kind === 'ingress' ? expose : undefined;
      expose = {
        kind,
        host: host ?? '',
        className: o.ingressClass ?? current?.className,
        annotations: o.ingressAnnotations ?? current?.annotations,
        tlsSecretName: o.tlsSecret ?? current?.tlsSecretName,
        controller: {
          ...current?.controller,
          ...(o.ingressControllerNamespace !== undefined && {
            namespace: o.ingressControllerNamespace,
          }),
        },
      };
    }
  }
  const exposeOnly = (
    what: 'gateway' | 'ingress',
    keys: readonly (keyof SynthOverrides)[],
    variables: string,
  ) => {
    if (kind !== what && keys.some((key) => o[key] !== undefined)) {
      problems.push(
        `${variables} only apply when the API is exposed through ${what === 'gateway' ? 'a Gateway' : 'an Ingress'} (K8S_EXPOSE=${what})`,
      );
    }
  };
  exposeOnly(
    'gateway',
    ['gatewayName', 'gatewayNamespace', 'gatewaySection', 'gatewayProxyNamespace'],
    'K8S_GATEWAY_*',
  );
  exposeOnly(
    'ingress',
    ['ingressClass', 'ingressAnnotations', 'ingressControllerNamespace', 'tlsSecret'],
    'K8S_INGRESS_* and K8S_TLS_SECRET',
  );

  let secret = settings.secret;
  const source = o.secretSource ?? secret?.source ?? 'manual';
  if (source === 'external-secrets') {
    const current = secret?.source === 'external-secrets' ? secret : undefined;
    const store = o.secretStore ?? current?.store;
    const remoteKey = o.secretRemoteKey ?? current?.remoteKey;
    if (!store?.name || !remoteKey?.trim()) {
      problems.push(
        'secret: external-secrets needs a store and a remote key (K8S_SECRET_STORE and K8S_SECRET_REMOTE_KEY)',
      );
    }
    secret = {
      source,
      store: store ?? { kind: 'ClusterSecretStore', name: '' },
      remoteKey: remoteKey ?? '',
      refreshInterval: current?.refreshInterval,
    };
  } else if (source === 'sealed-secrets') {
    const current = secret?.source === 'sealed-secrets' ? secret : undefined;
    const encryptedData = o.sealedSecrets ?? current?.encryptedData;
    if (!encryptedData) {
      problems.push('secret: sealed-secrets needs the encrypted values (K8S_SEALED_SECRETS_FILE)');
    }
    secret = { source, encryptedData: encryptedData ?? {} };
  } else {
    secret = { source };
  }
  if (source !== 'external-secrets' && (o.secretStore || o.secretRemoteKey !== undefined)) {
    problems.push(
      'K8S_SECRET_STORE and K8S_SECRET_REMOTE_KEY only apply with K8S_SECRETS=external-secrets',
    );
  }
  if (source !== 'sealed-secrets' && o.sealedSecrets) {
    problems.push('K8S_SEALED_SECRETS_FILE only applies with K8S_SECRETS=sealed-secrets');
  }

  const monitoring = settings.monitoring;
  const prometheusOperator =
    o.prometheusRelease === undefined
      ? monitoring?.prometheusOperator
      : o.prometheusRelease === 'none'
        ? undefined
        : { ...monitoring?.prometheusOperator, releaseLabel: o.prometheusRelease };

  return {
    ...settings,
    namespace: o.namespace ?? settings.namespace,
    image,
    expose,
    secret,
    monitoring: {
      ...monitoring,
      namespace: o.monitoringNamespace ?? monitoring?.namespace,
      prometheusOperator,
    },
  };
}

export function resolveEnvironment(
  given: EnvironmentSettings,
  overrides: SynthOverrides = {},
): Environment {
  const problems: string[] = [];
  const settings = applyOverrides(given, overrides, problems);
  const b = settings.backend;
  const { repository, tag } = settings.image;
  const env: Environment = {
    name: settings.name,
    namespace: settings.namespace,
    image: {
      repository,
      tag,
      pullSecrets: settings.image.pullSecrets ?? [],
      reference: `${repository}:${tag}`,
    },
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
    database: resolveDatabase(settings.database, problems),
    expose: resolveExposure(settings.expose),
    secret:
      settings.secret?.source === 'external-secrets'
        ? { ...settings.secret, refreshInterval: settings.secret.refreshInterval ?? '1h' }
        : (settings.secret ?? { source: 'manual' }),
    monitoring: {
      namespace: settings.monitoring?.namespace ?? 'monitoring',
      prometheusOperator: resolvePrometheusOperator(settings),
    },
  };
  problems.push(...environmentProblems(env));
  if (problems.length > 0) throw new EnvironmentError(env.name, problems);
  return env;
}

function resolveDatabase(
  db: EnvironmentSettings['database'],
  problems: string[],
): Environment['database'] {
  if (db.mode === 'external') {
    return {
      mode: 'external',
      cidr: db.cidr,
      port: db.port ?? 5432,
      maxConnections: db.maxConnections,
      reservedConnections: db.reservedConnections ?? 10,
    };
  }
  let image = db.image;
  if (image === undefined) {
    try {
      image = pinnedPostgresImage();
    } catch (error) {
      problems.push((error as Error).message);
      image = '';
    }
  }
  const maxConnections = db.maxConnections ?? 100;
  return {
    mode: 'in-cluster',
    image,
    storageSize: db.storageSize,
    storageClassName: db.storageClassName,
    resources: db.resources,
    maxConnections,
    reservedConnections: db.reservedConnections ?? 10,
    memory: derivePostgresMemory(db.resources.memoryLimitMiB, maxConnections, db.memory),
    exporterImage: db.exporterImage ?? defaultExporterImage,
    backup: db.backup === false ? undefined : resolveBackup(db.backup ?? {}, db, problems),
  };
}

function resolveBackup(
  backup: BackupSettings,
  db: InClusterDatabase,
  problems: string[],
): ResolvedBackup {
  const schedule = backup.schedule ?? defaultBackupSchedule;
  const interval = backupIntervalSeconds(schedule);
  if (typeof interval === 'string') problems.push(interval);
  return {
    schedule,
    timeZone: backup.timeZone ?? 'Etc/UTC',
    intervalSeconds: typeof interval === 'number' ? interval : 0,
    keep: backup.keep ?? 48,
    storageSize: backup.storageSize ?? db.storageSize,
    storageClassName: backup.storageClassName ?? db.storageClassName,
    resources: backup.resources ?? {
      cpuRequestMillis: 100,
      cpuLimitMillis: 500,
      memoryRequestMiB: 256,
      memoryLimitMiB: 256,
    },
  };
}

function resolveExposure(expose: EnvironmentSettings['expose']): ResolvedExposure | undefined {
  if (!expose) return undefined;
  if (expose.kind === 'gateway') {
    return {
      kind: 'gateway',
      host: expose.host,
      gateway: { ...expose.gateway, sectionName: expose.gateway.sectionName },
      edge: {
        namespace: expose.proxies?.namespace ?? expose.gateway.namespace,
        podLabels: expose.proxies?.podLabels ?? {},
      },
    };
  }
  return {
    kind: 'ingress',
    host: expose.host,
    className: expose.className,
    annotations: expose.annotations ?? {},
    tlsSecretName: expose.tlsSecretName,
    edge: {
      namespace: expose.controller?.namespace ?? 'ingress-nginx',
      podLabels: expose.controller?.podLabels ?? {},
    },
  };
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

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsSubdomain =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A registry host (with an optional port) and path components, as `docker pull` reads them. */
const imageRepository =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const qualifiedName =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const goDuration = /^(\d+h)?(\d+m)?(\d+s)?$/;

/** Rules a reviewer would otherwise have to remember. The connection and memory budgets are
 * checked separately, against the synthesized StatefulSet (see environment-app.ts). */
function environmentProblems(env: Environment): string[] {
  const problems: string[] = [];
  const name = (what: string, value: string, pattern = dnsLabel) => {
    if (!pattern.test(value)) problems.push(`${what} "${value}" is not a valid Kubernetes name`);
  };
  name('namespace', env.namespace);
  name('monitoring.namespace', env.monitoring.namespace);

  const { tag, repository, pullSecrets } = env.image;
  if (tag.trim() === '') {
    problems.push('image tag is empty (set image.tag or IMAGE_TAG to an immutable tag)');
  } else if (tag.toLowerCase() === 'latest') {
    problems.push(`image tag "${tag}" is mutable: pin a version so every pod runs the same code`);
  } else if (!/^\w[\w.-]{0,127}$/.test(tag)) {
    problems.push(`image tag "${tag}" is not a valid image tag`);
  }
  if (!imageRepository.test(repository)) {
    problems.push(
      `image repository "${repository}" is not an image name such as ghcr.io/acme/tasks-backend (no tag: IMAGE_TAG sets it)`,
    );
  }
  for (const secret of pullSecrets) name('image pull secret', secret, dnsSubdomain);

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
  const db = env.database;
  for (const [what, r] of [
    ['backend', resources],
    ['database', db.mode === 'in-cluster' ? db.resources : undefined],
    ['database.backup', db.mode === 'in-cluster' ? db.backup?.resources : undefined],
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

  if (db.mode === 'external' && !isCidr(db.cidr)) {
    problems.push(`database.cidr "${db.cidr}" is not an IPv4 CIDR such as 10.0.0.5/32`);
  }
  if (db.mode === 'in-cluster') {
    if (db.image !== '' && !exactMinorPostgresImage.test(db.image)) {
      problems.push(
        `database.image "${db.image}" is not pinned to an exact minor such as postgres:16.14-bookworm`,
      );
    }
    if (db.backup && (!Number.isInteger(db.backup.keep) || db.backup.keep < 1)) {
      problems.push(
        `database.backup.keep ${db.backup.keep} must be a whole number of dumps, at least 1`,
      );
    }
  }

  const expose = env.expose;
  if (expose) {
    if (!dnsSubdomain.test(expose.host)) {
      problems.push(`host "${expose.host}" is not a DNS name such as tasks.acme.io`);
    }
    name(
      `${expose.kind === 'gateway' ? 'gateway proxies' : 'ingress controller'} namespace`,
      expose.edge.namespace,
    );
    for (const [key, value] of Object.entries(expose.edge.podLabels)) {
      if (!qualifiedName.test(key) || !labelValue.test(value)) {
        problems.push(`edge pod label ${key}=${value} is not a valid label`);
      }
    }
    // An empty gateway name or namespace was already reported as missing.
    if (expose.kind === 'gateway' && expose.gateway.name && expose.gateway.namespace) {
      name('gateway name', expose.gateway.name, dnsSubdomain);
      name('gateway namespace', expose.gateway.namespace);
      if (expose.gateway.sectionName !== undefined) {
        name('gateway section', expose.gateway.sectionName, dnsSubdomain);
      }
    }
    if (expose.kind === 'ingress') {
      if (expose.className !== undefined) name('ingress class', expose.className, dnsSubdomain);
      if (expose.tlsSecretName !== undefined)
        name('TLS secret', expose.tlsSecretName, dnsSubdomain);
      for (const key of Object.keys(expose.annotations)) {
        if (!qualifiedName.test(key))
          problems.push(`ingress annotation "${key}" is not a valid key`);
      }
    }
  }

  const secret = env.secret;
  // An empty store or remote key was already reported as missing.
  if (secret.source === 'external-secrets' && secret.store.name && secret.remoteKey) {
    name('secret store', secret.store.name, dnsSubdomain);
    if (!goDuration.test(secret.refreshInterval) || secret.refreshInterval === '') {
      problems.push(
        `secret refreshInterval "${secret.refreshInterval}" is not a duration such as 1h`,
      );
    }
  }
  if (secret.source === 'sealed-secrets') {
    const expected = requiredSecretKeys(db.mode);
    const given = Object.keys(secret.encryptedData);
    const missing = expected.filter((key) => !given.includes(key));
    const extra = given.filter((key) => !expected.includes(key));
    if (missing.length > 0 || extra.length > 0) {
      problems.push(
        `sealed secret keys: expected exactly ${expected.join(', ')}` +
          (missing.length > 0 ? `; missing ${missing.join(', ')}` : '') +
          (extra.length > 0 ? `; unexpected ${extra.join(', ')}` : ''),
      );
    }
    for (const [key, value] of Object.entries(secret.encryptedData)) {
      // kubeseal --raw prints base64 of the sealed value; plain text here would be a leaked secret.
      if (!/^[A-Za-z0-9+/]{40,}={0,2}$/.test(value)) {
        problems.push(`sealed secret ${key} does not look like kubeseal --raw output (base64)`);
      }
    }
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

/**
 * Values copied from the examples that no real cluster should run with, each with the variable that
 * replaces it. Synth warns about each; strict mode (SYNTH_STRICT=true, for CI) refuses them.
 */
export function placeholders(env: Environment): string[] {
  const found: string[] = [];
  const example = /(^|[./-])example[.-](com|org|net)\b|^ghcr\.io\/example\//;
  if (example.test(env.image.repository)) {
    found.push(`image repository ${env.image.repository} (set IMAGE_REPOSITORY)`);
  }
  if (env.expose && example.test(env.expose.host)) {
    found.push(`host ${env.expose.host} (set K8S_HOST)`);
  }
  if (
    env.expose?.kind === 'ingress' &&
    env.expose.tlsSecretName &&
    example.test(env.expose.tlsSecretName)
  ) {
    found.push(`TLS secret ${env.expose.tlsSecretName} (set K8S_TLS_SECRET)`);
  }
  return found.map((what) => `environment "${env.name}": placeholder ${what}`);
}
