import { existsSync, readFileSync } from 'node:fs';
import type { ICronJob } from 'kubernetes-models/batch/v1/CronJob';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { describe, expect, it } from 'vitest';
import { backupScriptFile } from '../backup-chart.ts';
import { EnvironmentError } from '../environment.ts';
import { staging } from '../environments/staging.ts';
import { production } from '../environments/production.ts';
import { backupNames, databaseSecret } from '../names.ts';
import { pinnedPostgresImage } from '../postgres-image.ts';
import {
  configMapData,
  find,
  ofKind,
  synthesize,
  synthesizedEnvironments,
} from './support/manifests.ts';

const withBackups = synthesizedEnvironments.filter(
  (s) => s.env.database.mode === 'in-cluster' && s.env.database.backup,
);

/** What the script's interface (backup/backup.sh's header) needs in every pod that runs it. */
function expectScriptPod(spec: IPodSpec, args: readonly string[]) {
  const [container, ...others] = spec.containers;
  expect(others).toEqual([]);
  expect(container?.image).toBe(pinnedPostgresImage());
  expect([...(container?.command ?? []), ...(container?.args ?? [])]).toEqual([
    'sh',
    '/opt/backup/backup.sh',
    ...args,
  ]);
  const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e]));
  expect(env['PGHOST']?.value).toBe('tasks-postgres');
  expect(env['PGPORT']?.value).toBe('5432');
  expect(env['PGUSER']?.valueFrom?.secretKeyRef).toEqual({
    name: databaseSecret.name,
    key: 'POSTGRES_USER',
  });
  expect(env['PGDATABASE']?.valueFrom?.secretKeyRef).toEqual({
    name: databaseSecret.name,
    key: 'POSTGRES_DB',
  });
  // The password only as a file the script reads itself: never an env value, never an argument.
  expect(env['PGPASSWORD_FILE']?.value).toBe('/run/secrets/tasks-db/POSTGRES_PASSWORD');
  expect(env['PGPASSWORD']).toBeUndefined();
  expect(env['BACKUP_DIR']?.value).toBe('/backups');
  expect(env['BACKUP_KEEP']?.value).toBe('48');

  const mounts = Object.fromEntries((container?.volumeMounts ?? []).map((m) => [m.mountPath, m]));
  const volume = (path: string) => spec.volumes?.find((v) => v.name === mounts[path]?.name);
  expect(volume('/backups')?.persistentVolumeClaim?.claimName).toBe(backupNames.claim);
  expect(volume('/opt/backup')?.configMap).toEqual({
    name: backupNames.scriptConfigMap,
    defaultMode: 0o555,
  });
  expect(mounts['/opt/backup']?.readOnly).toBe(true);
  expect(volume('/run/secrets/tasks-db')?.secret?.items).toEqual([
    { key: 'POSTGRES_PASSWORD', path: 'POSTGRES_PASSWORD' },
  ]);
  // The root filesystem is read-only: /tmp is an emptyDir.
  expect(volume('/tmp')?.emptyDir).toBeDefined();
  expect(container?.securityContext?.readOnlyRootFilesystem).toBe(true);
  expect(container?.securityContext?.runAsUser).toBe(999);
  expect(spec.securityContext?.fsGroup).toBe(999);
  expect(spec.restartPolicy).toBe('Never');
}

describe.each(withBackups)('$env.name: scheduled backups', ({ env, objects, folder }) => {
  const cronJob = find<ICronJob>(objects, 'CronJob', backupNames.cronJob);

  it('the script ConfigMap holds backup/backup.sh byte for byte, so Kubernetes runs the file the container test runs', () => {
    expect(existsSync(backupScriptFile), `${backupScriptFile.pathname} is missing`).toBe(true);
    expect(configMapData(objects, backupNames.scriptConfigMap)).toEqual({
      'backup.sh': readFileSync(backupScriptFile, 'utf8'),
    });
  });

  it('the CronJob: hourly, Forbid, deadlines and history limits, the script in the database image', () => {
    expect(cronJob.spec).toMatchObject({
      schedule: '17 * * * *',
      timeZone: 'Etc/UTC',
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
    });
    const job = cronJob.spec?.jobTemplate.spec;
    expect(job?.backoffLimit).toBe(2);
    // A run may not overlap the next slot: Forbid would otherwise skip every run behind a stuck one.
    expect(job?.activeDeadlineSeconds).toBe(3600);
    expect(job?.template.metadata?.labels?.['app.kubernetes.io/component']).toBe('backup');
    expectScriptPod(job!.template.spec!, ['backup']);
  });

  it('dumps go to their own claim, applied once with the Namespace (setup/), never with the release', () => {
    const [claim, ...others] = ofKind<IPersistentVolumeClaim>(
      folder('setup'),
      'PersistentVolumeClaim',
    );
    expect(others).toEqual([]);
    expect(claim?.metadata?.name).toBe(backupNames.claim);
    expect(claim?.spec?.resources?.requests?.['storage']).toBe(
      env.database.mode === 'in-cluster' ? env.database.storageSize : undefined,
    );
    expect(ofKind(folder(''), 'PersistentVolumeClaim')).toEqual([]);
  });

  it('the backup shell (on demand): the same pod, idling, deleted after six hours', () => {
    const [pod] = ofKind<IPod>(folder('backup-shell'), 'Pod');
    expect(pod?.metadata?.name).toBe(backupNames.shell);
    expect(pod?.spec?.activeDeadlineSeconds).toBe(21_600);
    const spec = pod!.spec!;
    expect(spec.containers[0]?.command).toEqual(['sleep', '21600']);
    expectScriptPod(
      {
        ...spec,
        containers: [{ ...spec.containers[0]!, command: ['sh', '/opt/backup/backup.sh'] }],
      },
      [],
    );
  });
});

describe('restore, synthesized on demand', () => {
  const dump = 'tasks-20261130T120000Z.dump';

  it("K8S_RESTORE_DUMP adds restore/: a Job running the same script's restore on that file, never retried", () => {
    const { folder, objects } = synthesize(production, { restoreDump: dump });
    const [job, ...others] = ofKind<IJob>(folder('restore'), 'Job');
    expect(others).toEqual([]);
    expect(job?.metadata?.name).toBe(backupNames.restoreJob);
    expect(job?.spec?.backoffLimit).toBe(0);
    expectScriptPod(job!.spec!.template.spec!, ['restore', dump]);
    // The same pod as the CronJob's, but for the command.
    const cron = find<ICronJob>(objects, 'CronJob', backupNames.cronJob);
    const strip = (spec: IPodSpec) => ({
      ...spec,
      containers: spec.containers.map((c) => ({ ...c, args: [] })),
    });
    expect(strip(job!.spec!.template.spec!)).toEqual(
      strip(cron.spec.jobTemplate.spec!.template.spec!),
    );
  });

  it('without it, there is no restore folder', () => {
    expect(synthesize(production).output.folders.map((f) => f.path)).not.toContain('restore');
  });

  it('an environment without an in-cluster database has nothing to restore into', () => {
    expect(() => synthesize(staging, { restoreDump: dump })).toThrow(EnvironmentError);
    expect(() => synthesize(staging, { restoreDump: dump })).toThrow(
      /K8S_RESTORE_DUMP: this environment has no in-cluster database with backups/,
    );
  });
});
