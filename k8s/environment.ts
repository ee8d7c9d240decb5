import type { PostgresMemorySettings } from './postgres-memory.ts';

/**
 * The Helm-free "values": what may differ between environments, typed, with defaults in one place.
 * Environment files (k8s/environments/*.ts) set these; synth-time variables (k8s/synth-settings.ts)
 * override some of them (overrides.ts); `resolveEnvironment` (resolve-environment.ts) fills the
 * defaults and refuses settings that must never reach a cluster (environment-rules.ts), so the
 * charts only ever see checked values.
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
