import { existsSync, readFileSync } from 'node:fs';
import { ApiObject, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { ContainerResources, Environment, ResolvedInClusterDatabase } from './environment.ts';
import {
  kubeResources,
  restrictedContainerSecurity,
  restrictedPodSecurity,
} from './pod-security.ts';
import {
  backupNames,
  commonLabels,
  databaseSecret,
  namespaceNameLabel,
  postgresNames,
  selectorLabels,
} from './names.ts';

const { k8s } = kplus;

/**
 * The backup program both deployments run: the VPS's compose service and this CronJob execute the
 * same file, in the same postgres image as the database, so the container test exercises exactly
 * what Kubernetes runs. It is delivered as a ConfigMap built from the file at synth time.
 */
export const backupScriptFile = new URL('../backup/backup.sh', import.meta.url);

export class BackupScriptError extends Error {
  override name = 'BackupScriptError';
}

export function readBackupScript(file: URL = backupScriptFile): string {
  if (!existsSync(file)) {
    throw new BackupScriptError(
      `${file.pathname} is missing: the backup CronJob runs that script (the VPS's backup service runs it too). ` +
        'Restore it, or set database.backup: false for environments without scheduled dumps.',
    );
  }
  return readFileSync(file, 'utf8');
}

export type InClusterEnvironment = Environment & { readonly database: ResolvedInClusterDatabase };

interface BackupPodOptions {
  /** The script's command and arguments: `backup`, `restore <file>`... */
  readonly args: readonly string[];
  readonly resources: ContainerResources;
}

/**
 * The pod every backup task runs in: the postgres image as uid 999 under the restricted profile,
 * the script from its ConfigMap, the password as a file, the dumps on their own claim. Labelled
 * `component: backup`, which is what PostgreSQL's NetworkPolicy admits besides the backend.
 */
function backupPodSpec(
  env: InClusterEnvironment,
  options: BackupPodOptions,
  container: Partial<kplus.k8s.Container> = {},
): kplus.k8s.PodSpec {
  const { database } = env;
  const secretKey = (name: string, key: string): kplus.k8s.EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: databaseSecret.name, key } },
  });
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    restartPolicy: 'Never',
    securityContext: restrictedPodSecurity(postgresNames.uid, postgresNames.gid),
    containers: [
      {
        name: 'backup',
        image: database.image,
        imagePullPolicy: 'IfNotPresent',
        command: ['sh', `${backupNames.scriptMountPath}/${backupNames.scriptKey}`],
        args: [...options.args],
        // The script takes everything from the environment; the password only as a file path.
        env: [
          { name: 'PGHOST', value: postgresNames.name },
          { name: 'PGPORT', value: String(postgresNames.port) },
          secretKey('PGUSER', databaseSecret.userKey),
          secretKey('PGDATABASE', databaseSecret.databaseKey),
          {
            name: 'PGPASSWORD_FILE',
            value: `${databaseSecret.mountPath}/${databaseSecret.passwordKey}`,
          },
          { name: 'BACKUP_DIR', value: backupNames.backupDir },
          { name: 'BACKUP_KEEP', value: String(database.backup?.keep ?? 48) },
        ],
        resources: kubeResources(options.resources, { requestMiB: 64, limitMiB: 1024 }),
        securityContext: restrictedContainerSecurity(postgresNames.uid, postgresNames.gid),
        volumeMounts: [
          { name: 'backups', mountPath: backupNames.backupDir },
          { name: 'script', mountPath: backupNames.scriptMountPath, readOnly: true },
          { name: 'secret', mountPath: databaseSecret.mountPath, readOnly: true },
          // The root filesystem is read-only; the script keeps its temporary files here.
          { name: 'tmp', mountPath: '/tmp' },
        ],
        ...container,
      },
    ],
    volumes: [
      {
        name: 'backups',
        persistentVolumeClaim: { claimName: backupNames.claim },
      },
      {
        name: 'script',
        // Executable, read-only: the pod runs exactly the file the repository holds.
        configMap: { name: backupNames.scriptConfigMap, defaultMode: 0o555 },
      },
      {
        name: 'secret',
        secret: {
          secretName: databaseSecret.name,
          items: [{ key: databaseSecret.passwordKey, path: databaseSecret.passwordKey }],
          // Readable by the group, which fsGroup makes 999: the postgres user.
          defaultMode: 0o440,
        },
      },
      { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('256Mi') } },
    ],
  };
}

export interface BackupChartProps {
  readonly env: InClusterEnvironment;
}

/**
 * Scheduled dumps (applied every release): the script's ConfigMap, the CronJob and the
 * NetworkPolicy that lets its pods reach PostgreSQL and DNS and nothing else. The claim the dumps
 * go to is applied once, by BackupVolumeChart.
 */
export class BackupChart extends Chart {
  readonly cronJob: ApiObject;

  constructor(scope: Construct, id: string, props: BackupChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env } = props;
    const backup = env.database.backup;
    if (!backup) throw new Error('BackupChart needs database.backup');
    const labels = commonLabels('backup');

    new kplus.ConfigMap(this, 'script', {
      metadata: { name: backupNames.scriptConfigMap, labels },
      data: { [backupNames.scriptKey]: readBackupScript() },
    });

    // Low-level KubeCronJob: kplus.CronJob injects its own container defaults (see README traps).
    this.cronJob = new k8s.KubeCronJob(this, 'cronjob', {
      metadata: { name: backupNames.cronJob, labels },
      spec: {
        schedule: backup.schedule,
        timeZone: backup.timeZone,
        // Two dumps at once would only compete for the same database and volume.
        concurrencyPolicy: 'Forbid',
        // A run the controller could not start within 5 minutes is skipped and counted as missed.
        startingDeadlineSeconds: 300,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          metadata: { labels },
          spec: {
            backoffLimit: 2,
            // A dump still running at the next slot is stuck; Forbid would otherwise skip every run.
            activeDeadlineSeconds: Math.min(backup.intervalSeconds, 6 * 3600),
            template: {
              metadata: { labels },
              spec: backupPodSpec(env, { args: ['backup'], resources: backup.resources }),
            },
          },
        },
      },
    });

    const policy = new kplus.NetworkPolicy(this, 'egress-policy', {
      metadata: { name: `${backupNames.cronJob}-egress`, labels },
      selector: kplus.Pods.select(this, 'pods', { labels: selectorLabels('backup') }),
    });
    policy.addEgressRule(
      kplus.Pods.select(this, 'postgres-pods', { labels: selectorLabels('postgres') }),
      [kplus.NetworkPolicyPort.tcp(postgresNames.port)],
    );
    policy.addEgressRule(
      kplus.Pods.select(this, 'kube-dns', {
        labels: { 'k8s-app': 'kube-dns' },
        namespaces: kplus.Namespaces.select(this, 'kube-system-namespace', {
          labels: { [namespaceNameLabel]: 'kube-system' },
        }),
      }),
      [kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)],
    );
  }
}

/**
 * The dumps' volume, applied once with the Namespace (setup/): `kubectl delete -k` on the release
 * folder leaves it, and the dumps on it, in place.
 */
export class BackupVolumeChart extends Chart {
  constructor(scope: Construct, id: string, props: BackupChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const backup = props.env.database.backup;
    if (!backup) throw new Error('BackupVolumeChart needs database.backup');
    new k8s.KubePersistentVolumeClaim(this, 'claim', {
      metadata: { name: backupNames.claim, labels: commonLabels('backup') },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: backup.storageClassName,
        resources: { requests: { storage: k8s.Quantity.fromString(backup.storageSize) } },
      },
    });
  }
}

/**
 * On demand (k8s/dist/<env>/backup-shell/): a pod with the backup volume, the script and the
 * database credentials, to list dumps, take one now, copy dumps off the cluster or copy one in.
 * It deletes itself after six hours.
 */
export class BackupShellChart extends Chart {
  constructor(scope: Construct, id: string, props: BackupChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env } = props;
    const backup = env.database.backup;
    if (!backup) throw new Error('BackupShellChart needs database.backup');
    const spec = backupPodSpec(
      env,
      { args: [], resources: backup.resources },
      // Idles until an operator execs into it; `sleep` is the postgres image's own.
      { command: ['sleep', '21600'], args: undefined },
    );
    new k8s.KubePod(this, 'pod', {
      metadata: { name: backupNames.shell, labels: commonLabels('backup') },
      spec: { ...spec, activeDeadlineSeconds: 21_600, terminationGracePeriodSeconds: 1 },
    });
  }
}

export interface RestoreChartProps extends BackupChartProps {
  /** A file name as `backup.sh list` prints it. */
  readonly dump: string;
}

/**
 * Synthesized only when asked for (K8S_RESTORE_DUMP=<file>): a Job that runs the script's
 * `restore <file>` once. Never retried: a failed restore needs a person, not a second attempt.
 */
export class RestoreChart extends Chart {
  constructor(scope: Construct, id: string, props: RestoreChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env, dump } = props;
    const backup = env.database.backup;
    if (!backup) throw new Error('RestoreChart needs database.backup');
    const labels = commonLabels('backup');
    new k8s.KubeJob(this, 'job', {
      metadata: { name: backupNames.restoreJob, labels },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: 6 * 3600,
        template: {
          metadata: { labels },
          spec: backupPodSpec(env, { args: ['restore', dump], resources: backup.resources }),
        },
      },
    });
  }
}
