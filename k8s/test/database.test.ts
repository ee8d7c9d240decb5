import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { afterAll, describe, expect, it } from 'vitest';
import { backupIntervalSeconds } from '../backup-schedule.ts';
import { serverSettingsFromStatefulSet } from '../connection-budget.ts';
import { EnvironmentError, type EnvironmentSettings } from '../environment.ts';
import { dev } from '../environments/dev.ts';
import { production } from '../environments/production.ts';
import { pinnedPostgresImage, PostgresImageError } from '../postgres-image.ts';
import {
  derivePostgresMemory,
  PER_CONNECTION_MIB,
  postgresMemoryProblem,
} from '../postgres-memory.ts';
import { find, synthesize, synthesizedEnvironments } from './support/manifests.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const composeFileWith = (text: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'compose-pin-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'docker-compose.yml'), text);
  return pathToFileURL(join(dir, 'docker-compose.yml'));
};

const withDatabase = (
  settings: EnvironmentSettings,
  database: Partial<Extract<EnvironmentSettings['database'], { mode: 'in-cluster' }>>,
): EnvironmentSettings => ({
  ...settings,
  database: { ...settings.database, ...database } as EnvironmentSettings['database'],
});

describe('the PostgreSQL image: one pin, in docker-compose.yml', () => {
  it('reads x-postgres-image, an exact minor', () => {
    expect(pinnedPostgresImage()).toMatch(/^postgres:\d+\.\d+-bookworm$/);
  });

  it('when the field is missing, then synth says where to declare it', () => {
    const file = composeFileWith('services:\n  db:\n    image: postgres:16-bookworm\n');
    expect(() => pinnedPostgresImage(file)).toThrow(PostgresImageError);
    expect(() => pinnedPostgresImage(file)).toThrow(
      /has no top-level x-postgres-image field: declare the PostgreSQL image there once/,
    );
  });

  it('when the pin names only a major, then it is refused', () => {
    const file = composeFileWith('x-postgres-image: &postgres-image postgres:16-bookworm\n');
    expect(() => pinnedPostgresImage(file)).toThrow(/is not pinned to an exact minor/);
  });

  it('an environment that sets its own image must pin a minor too', () => {
    expect(() => synthesize(withDatabase(dev, { image: 'postgres:16' }))).toThrow(
      /database.image "postgres:16" is not pinned to an exact minor/,
    );
    const { objects } = synthesize(withDatabase(dev, { image: 'registry.acme.io/postgres:16.14' }));
    const sts = find<IStatefulSet>(objects, 'StatefulSet', 'tasks-postgres');
    expect(sts.spec?.template.spec?.containers[0]?.image).toBe('registry.acme.io/postgres:16.14');
  });
});

describe('PostgreSQL memory, derived from the memory limit and checked against it', () => {
  it('derives a quarter for shared_buffers and work_mem from what max_connections leaves', () => {
    expect(derivePostgresMemory(2048, 150)).toEqual({
      sharedBuffersMiB: 512,
      maintenanceWorkMemMiB: 64,
      // (2048 - 512 - 4 x 64 - 150 x 3 - 32) / (150 x 2) = 2.66
      workMemMiB: 2,
      effectiveCacheSizeMiB: 1024,
    });
    expect(derivePostgresMemory(512, 50).workMemMiB).toBe(1);
  });

  it.each(synthesizedEnvironments.filter((s) => s.env.database.mode === 'in-cluster'))(
    '$env.name: the StatefulSet runs with the derived settings, and they fit its limit',
    ({ env, objects }) => {
      const sts = find<IStatefulSet>(objects, 'StatefulSet', 'tasks-postgres');
      const settings = serverSettingsFromStatefulSet(sts);
      const limit = sts.spec?.template.spec?.containers[0]?.resources?.limits?.['memory'];
      console.log(
        `${env.name}: memory limit ${String(limit)}, ${['max_connections', 'shared_buffers', 'work_mem', 'maintenance_work_mem', 'effective_cache_size'].map((k) => `${k}=${settings.get(k)}`).join(' ')}`,
      );
      if (env.database.mode !== 'in-cluster') return;
      const { memory } = env.database;
      expect(settings.get('shared_buffers')).toBe(`${memory.sharedBuffersMiB}MB`);
      expect(settings.get('work_mem')).toBe(`${memory.workMemMiB}MB`);
      expect(memory.workMemMiB).toBeGreaterThanOrEqual(1);
      expect(
        postgresMemoryProblem({
          memoryLimitMiB: env.database.resources.memoryLimitMiB,
          maxConnections: env.database.maxConnections,
          settings: memory,
        }),
      ).toBeUndefined();
    },
  );

  it('when max_connections leaves no work_mem, then synth refuses and says what to change', () => {
    const crowded = withDatabase(production, {
      resources: {
        cpuRequestMillis: 500,
        cpuLimitMillis: 2000,
        memoryRequestMiB: 1024,
        memoryLimitMiB: 1024,
      },
    });
    expect(() => synthesize(crowded)).toThrow(
      /PostgreSQL memory: a 1024 MiB limit leaves less than 1 MiB of work_mem for each of max_connections 150 .*Raise database.resources.memoryLimitMiB or lower database.maxConnections/,
    );
  });

  it('when a setting given by hand overflows the limit, then synth refuses with the arithmetic', () => {
    const greedy = withDatabase(production, { memory: { workMemMiB: 8 } });
    expect(() => synthesize(greedy)).toThrow(
      `PostgreSQL memory budget exceeded: shared_buffers 512 + (1 + 3 autovacuum workers) x maintenance_work_mem 64 + max_connections 150 x (${PER_CONNECTION_MIB} per connection + 2 x work_mem 8) + 32 other = 3650 MiB, above the container's memory limit 2048 MiB.`,
    );
  });

  it('the check reads the StatefulSet as synthesized: a setting given by hand is what it checks', () => {
    const { objects } = synthesize(withDatabase(production, { memory: { sharedBuffersMiB: 256 } }));
    const settings = serverSettingsFromStatefulSet(find(objects, 'StatefulSet', 'tasks-postgres'));
    expect(settings.get('shared_buffers')).toBe('256MB');
  });
});

describe('backup schedules: one interval the freshness alert can use', () => {
  it.each([
    ['17 * * * *', 3600],
    ['@hourly', 3600],
    ['*/15 * * * *', 900],
    ['5 */6 * * *', 21_600],
    ['30 3 * * *', 86_400],
    ['@daily', 86_400],
  ])('%s runs every %i s', (schedule, seconds) => {
    expect(backupIntervalSeconds(schedule)).toBe(seconds);
  });

  it.each(['0 9-17 * * *', '*/7 * * * *', '0 3 * * 1', 'every hour', '0 0 1 * *'])(
    '%j is refused with the forms that work',
    (schedule) => {
      expect(backupIntervalSeconds(schedule)).toMatch(
        /has no single interval .*use "M \* \* \* \*"/,
      );
      expect(() => synthesize(withDatabase(dev, { backup: { schedule } }))).toThrow(
        EnvironmentError,
      );
    },
  );
});
