/**
 * Names, labels and ports shared by the charts and by their tests. A NetworkPolicy in one chart
 * selects pods built by another, so both must take their labels from here.
 */

export const appName = 'tasks';

/** The Secret every manifest references and none contains (see k8s/README.md for how to create it). */
export const databaseSecret = {
  name: `${appName}-db`,
  /** Read by the backend; the only key needed in external-database mode. */
  databaseUrlKey: 'DATABASE_URL',
  /** Read by the postgres image's entrypoint on first boot (in-cluster mode only). */
  userKey: 'POSTGRES_USER',
  passwordKey: 'POSTGRES_PASSWORD',
  databaseKey: 'POSTGRES_DB',
  /**
   * Where pods mount the keys they read as files (the `_FILE` convention of the official images):
   * a file never shows in `kubectl describe`, in /proc/<pid>/environ or in a crash dump's env.
   */
  mountPath: '/run/secrets/tasks-db',
} as const;

/** The keys the Secret must hold, by database mode. */
export function requiredSecretKeys(mode: 'in-cluster' | 'external'): string[] {
  return mode === 'in-cluster'
    ? [
        databaseSecret.databaseUrlKey,
        databaseSecret.userKey,
        databaseSecret.passwordKey,
        databaseSecret.databaseKey,
      ]
    : [databaseSecret.databaseUrlKey];
}

export const backendNames = {
  name: `${appName}-backend`,
  /** The numeric user and group the backend image runs as. */
  uid: 1000,
  gid: 1000,
  httpPort: 3000,
  metricsPort: 9464,
  metricsPath: '/metrics',
  livenessPath: '/api/health/live',
  readinessPath: '/api/health/ready',
  /**
   * The readiness probe's period. Here, not in the chart, because the settings check reads it too:
   * the shutdown delay must cover at least one period.
   */
  readinessPeriodSeconds: 5,
} as const;

export const postgresNames = {
  name: `${appName}-postgres`,
  headlessName: `${appName}-postgres-headless`,
  /** Only the exporter's port, so the Service the backend uses never carries metrics. */
  metricsServiceName: `${appName}-postgres-metrics`,
  /** The official postgres image's `postgres` user. */
  uid: 999,
  gid: 999,
  port: 5432,
  /** postgres_exporter's default port. */
  metricsPort: 9187,
  dataMountPath: '/var/lib/postgresql/data',
  /** A subdirectory, because a fresh volume's root holds `lost+found`, which initdb refuses. */
  pgdata: '/var/lib/postgresql/data/pgdata',
  /** The claim the StatefulSet's template creates for its only pod: `<template>-<statefulset>-0`. */
  dataClaimName: `data-${appName}-postgres-0`,
} as const;

export const backupNames = {
  cronJob: `${appName}-backup`,
  /** Applied once (setup/): deleting the release folder never takes the dumps with it. */
  claim: `${appName}-backups`,
  scriptConfigMap: `${appName}-backup-script`,
  scriptKey: 'backup.sh',
  scriptMountPath: '/opt/backup',
  backupDir: '/backups',
  /** Synthesized on demand only: a pod to list, copy off or copy in dumps. */
  shell: `${appName}-backup-shell`,
  /** Synthesized on demand only, for one dump file. */
  restoreJob: `${appName}-restore`,
} as const;

export type Component = 'backend' | 'postgres' | 'backup';

/** Labels that never change for the life of a workload: Deployment and StatefulSet selectors use them. */
export function selectorLabels(component: Component): Record<string, string> {
  return { 'app.kubernetes.io/name': appName, 'app.kubernetes.io/component': component };
}

export function commonLabels(component: Component): Record<string, string> {
  return {
    ...selectorLabels(component),
    'app.kubernetes.io/part-of': appName,
    'app.kubernetes.io/managed-by': 'cdk8s',
  };
}

/** Set on every namespace since Kubernetes 1.22, so policies can select namespaces by name. */
export const namespaceNameLabel = 'kubernetes.io/metadata.name';
