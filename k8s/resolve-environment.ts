import { backupIntervalSeconds } from './backup-schedule.ts';
import {
  defaultBackupSchedule,
  defaultExporterImage,
  EnvironmentError,
  type BackupSettings,
  type Environment,
  type EnvironmentSettings,
  type InClusterDatabase,
  type ResolvedBackup,
  type ResolvedExposure,
} from './environment.ts';
import { environmentProblems } from './environment-rules.ts';
import { applyOverrides, type SynthOverrides } from './overrides.ts';
import { pinnedPostgresImage } from './postgres-image.ts';
import { derivePostgresMemory } from './postgres-memory.ts';

/**
 * From an environment file's settings and the synth-time overrides to a checked Environment: every
 * default filled in, every rule of environment-rules.ts applied, every problem reported at once.
 */
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
