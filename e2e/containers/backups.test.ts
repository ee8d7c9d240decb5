import { randomUUID } from 'node:crypto';
import {
  chmod,
  chown,
  copyFile,
  mkdir,
  readdir,
  readFile,
  stat,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../backend/test/support/wait.ts';
import type { ComposeProject } from './docker.ts';
import { seedAccount, type Account, type EdgeClient } from './edge-client.ts';
import { log, output } from './shell.ts';
import { REPLICAS, repo, Stack, volumesOf } from './stack.ts';
import { serverVersion, STAND_INS } from './stand-ins.ts';
import { scenario } from './steps.ts';

/**
 * Issue 10's proof, on the real compose stack: data made through the API is dumped by the backup
 * service, the database volume is destroyed, and the restore brings every row back byte for byte,
 * with the old tokens working. Broken dumps are refused without touching the data, the schedule
 * really runs and rotates, and the same dump restores into PostgreSQL 17 (the upgrade drill).
 *
 * About the client tools: the official postgres:16 image carries pg_dump/pg_restore 16; the
 * stand-in here carries 17 (no 16 client exists on the reachable mirrors). So this test proves the
 * 17-tools path against a 16 server, the SET transaction_timeout line backup.sh filters included;
 * the 16-tools path (what the official image runs) differs only in not emitting that line.
 */

const images = inject('backendImages');
const step = scenario();
let stack: Stack;
let edge: EdgeClient;
const accounts: Account[] = [];
/** The exports when the dump was taken (step 2), and the state the live database must keep. */
let atDump: { database: string; api: string };
let before: { database: string; api: string };
let dumpName = '';
const DRILL_DUMP = 'before-upgrade.dump';

/**
 * Every row of every table in the public schema, as PostgreSQL's own text form, in a stable order:
 * a "full export" to compare byte for byte.
 */
async function databaseExport(compose?: ComposeProject): Promise<string> {
  const tables = (
    await stack.sql(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename;",
      compose,
    )
  )
    .split('\n')
    .filter(Boolean);
  expect(tables).toContain('schema_migrations');
  const query = tables
    .map(
      (table) => `SELECT '${table}', count(*) FROM public.${table};
        SELECT t::text FROM public.${table} AS t ORDER BY t::text;`,
    )
    .join('\n');
  return stack.sql(query, compose);
}

/** What each user sees through the API: who they are and every task, page by page. */
async function apiExport(): Promise<string> {
  const views = [];
  for (const account of accounts) {
    const me = await edge.request('GET', '/api/v1/me', { token: account.token });
    expect(me.status).toBe(200);
    const tasks = [];
    let cursor: string | null = null;
    do {
      const page = await edge.request(
        'GET',
        `/api/v1/tasks?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { token: account.token },
      );
      expect(page.status).toBe(200);
      tasks.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    views.push({ me: me.body, tasks });
  }
  return JSON.stringify(views, null, 1);
}

async function dumpsOnDisk(): Promise<string[]> {
  return (await readdir(stack.backupDir)).filter((name) => /^tasks-\d{8}T\d{6}Z\.dump$/.test(name));
}

/** A file in the backup directory, readable by the backup container (uid 999). */
async function placeFile(name: string, content: Buffer | string): Promise<void> {
  const file = join(stack.backupDir, name);
  await writeFile(file, content);
  await chown(file, 999, 999);
  await chmod(file, 0o600);
}

async function expectUnchanged(): Promise<void> {
  expect(await databaseExport()).toBe(before.database);
  expect(await apiExport()).toBe(before.api);
}

describe('backups: backup/backup.sh in the backup service', () => {
  beforeAll(async () => {
    stack = await Stack.create('backups', images.a);
  });
  afterAll(async () => {
    await stack?.remove();
  });

  step('1. through the API: users register, create, edit and delete tasks', async () => {
    await stack.up();
    edge = await stack.edge();
    for (let i = 0; i < 3; i++) {
      accounts.push(await seedAccount(edge, `backup-${i}-${randomUUID()}@example.com`, 12));
    }
    const [first, second] = accounts as [Account, Account];
    // Edits (versions 2 and 3, notes, due dates, completion), deletions, an idempotent create.
    for (const id of first.taskIds.slice(0, 5)) {
      const patched = await edge.request('PATCH', `/api/v1/tasks/${id}`, {
        token: first.token,
        body: { notes: 'ünïcödé ✓ notes', dueAt: '2027-01-02T03:04:05.678Z', completed: true },
      });
      expect(patched.status).toBe(200);
      const again = await edge.request('PATCH', `/api/v1/tasks/${id}`, {
        token: first.token,
        body: { title: `${patched.body.title} (edited)` },
      });
      expect(again.body.version).toBe(3);
    }
    for (const id of second.taskIds.slice(0, 4)) {
      expect(
        (await edge.request('DELETE', `/api/v1/tasks/${id}`, { token: second.token })).status,
      ).toBe(204);
    }
    second.taskIds = second.taskIds.slice(4);
    const idempotent = await edge.request('POST', '/api/v1/tasks', {
      token: second.token,
      headers: { 'idempotency-key': randomUUID() },
      body: { title: 'created once' },
    });
    expect(idempotent.status).toBe(201);
    atDump = { database: await databaseExport(), api: await apiExport() };
    before = atDump;
    expect(atDump.database).toContain('ünïcödé ✓ notes');
  });

  step('2. `docker compose run --rm backup backup` dumps and prints the file name', async () => {
    const started = Date.now();
    const result = await stack.backupCommand(['backup']);
    expect(result.code, result.stderr).toBe(0);
    dumpName = result.stdout.trim().split('\n').pop() ?? '';
    expect(dumpName).toMatch(/^tasks-\d{8}T\d{6}Z\.dump$/);
    const dump = await stat(join(stack.backupDir, dumpName));
    // Only its owner (uid 999) may read it: it holds password and token hashes.
    expect(dump.mode & 0o777).toBe(0o600);
    log(
      `dump ${dumpName}: ${dump.size} bytes in ${Date.now() - started} ms (compose run included)`,
    );
    // Nothing half-written is left, and `list` shows it last.
    expect((await readdir(stack.backupDir)).filter((name) => name.endsWith('.partial'))).toEqual(
      [],
    );
    const listed = await stack.backupCommand(['list']);
    expect(listed.stdout.trim().split('\n').pop()?.split('\t')[0]).toBe(dumpName);
    const status = await readFile(join(stack.backupDir, 'status', 'backup.prom'), 'utf8');
    expect(status).toContain(`tasks_backup_last_size_bytes ${dump.size}\n`);
    expect(status).toMatch(/^tasks_backup_last_success_timestamp_seconds \d{10}$/m);
    expect(status).toMatch(/^# TYPE tasks_backup_dumps gauge$/m);
    // Kept aside under a name rotation never touches, for the upgrade drill (step 7).
    await copyFile(join(stack.backupDir, dumpName), join(stack.backupDir, DRILL_DUMP));
    await chown(join(stack.backupDir, DRILL_DUMP), 999, 999);
  });

  step(
    '3. `down -v` destroys the database; `up` starts empty; `restore` brings every byte back',
    async () => {
      await stack.compose.run(['down', '--volumes']);
      expect(await volumesOf(stack.compose.name)).toEqual([]);
      stack.resetEdge();
      await stack.up();
      edge = await stack.edge();
      // The data is gone: the token is unknown to the new, empty database.
      expect((await edge.request('GET', '/api/v1/me', { token: accounts[0]!.token })).status).toBe(
        401,
      );

      const started = Date.now();
      const restored = await stack.backupCommand(['restore', dumpName]);
      expect(restored.code, restored.stderr).toBe(0);
      log(`restore of ${dumpName}: ${Date.now() - started} ms (compose run included)`);
      // Old tokens work again, and everything reads exactly as before.
      expect(await databaseExport()).toBe(atDump.database);
      expect(await apiExport()).toBe(atDump.api);
    },
  );

  step(
    '4. a truncated or foreign dump is refused with a non-zero exit, and the data is intact',
    async () => {
      const dump = await readFile(join(stack.backupDir, dumpName));
      await placeFile('truncated.dump', dump.subarray(0, Math.floor(dump.length * 0.6)));
      await placeFile('header-only.dump', dump.subarray(0, 200));
      await placeFile('foreign.dump', 'SELECT 1;\n');
      for (const name of ['truncated.dump', 'header-only.dump', 'foreign.dump']) {
        const refused = await stack.backupCommand(['restore', name]);
        expect(refused.code, name).toBe(1);
        expect(refused.stderr, name).toMatch(
          /refused: .* not a complete pg_dump archive.*not touched/,
        );
      }
      const missing = await stack.backupCommand(['restore', 'no-such.dump']);
      expect(missing.code).toBe(1);
      await expectUnchanged();
    },
  );

  step('5. a restore that fails midway rolls back: the live database is untouched', async () => {
    // A change made after the dump: a restore that went through would lose it.
    const later = await edge.request('POST', '/api/v1/tasks', {
      token: accounts[0]!.token,
      body: { title: 'made after the dump' },
    });
    expect(later.status).toBe(201);
    before = { database: await databaseExport(), api: await apiExport() };
    expect(before.database).not.toBe(atDump.database);

    // (a) The SQL fails late: a dump granting to a role that no longer exists (after the data).
    await stack.sql('CREATE ROLE ghost; GRANT SELECT ON public.tasks TO ghost;');
    const ghostDump = (await stack.backupCommand(['backup'])).stdout.trim();
    await stack.sql('REVOKE SELECT ON public.tasks FROM ghost; DROP ROLE ghost;');
    const failsLate = await stack.backupCommand(['restore', ghostDump]);
    expect(failsLate.code).toBe(1);
    expect(failsLate.stderr).toMatch(/role "ghost" does not exist/);
    expect(failsLate.stderr).toMatch(/rolled back; the database is as it was/);
    await expectUnchanged();

    // (b) pg_restore fails after writing every statement (say, on the last item): psql then
    // reaches the end of complete SQL with the transaction open. Only the script's own check of
    // pg_restore's exit status stands between that and a COMMIT. Simulated with a pg_restore that
    // behaves normally, except that it exits 1 after streaming a restore.
    const shim = join(stack.workDir, 'shim');
    await mkdir(shim, { recursive: true });
    await writeFile(
      join(shim, 'pg_restore'),
      `#!/bin/sh
PATH=\${PATH#/shim:}
case " $* " in
  *' --file=- '*) pg_restore "$@"; exit 1 ;;
esac
exec pg_restore "$@"
`,
      { mode: 0o755 },
    );
    const path = await output('docker', [
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      STAND_INS.postgres,
      '-c',
      'echo "$PATH"',
    ]);
    const failing = await stack.backupCommand(
      ['restore', dumpName],
      ['-v', `${shim}:/shim:ro`, '-e', `PATH=/shim:${path}`],
    );
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/pg_restore failed \(exit 1\): rolled back/);
    await expectUnchanged();
  });

  step('6. the scheduled loop runs and rotates (BACKUP_INTERVAL=2s, BACKUP_KEEP=2)', async () => {
    await stack.setEnv('BACKUP_INTERVAL', '2s');
    await stack.setEnv('BACKUP_KEEP', '2');
    const startedWith = await dumpsOnDisk();
    await stack.compose.run(['up', '-d', '--no-deps', 'backup']);
    const seen = new Set<string>();
    let most = 0;
    await waitFor(
      'two new dumps from the schedule, with the older ones rotated out',
      async () => {
        const now = await dumpsOnDisk();
        most = Math.max(most, now.length);
        for (const name of now) if (!startedWith.includes(name)) seen.add(name);
        return seen.size >= 2 && now.length === 2;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    // A new dump is added before the oldest go: at most one more than there were.
    expect(most).toBeLessThanOrEqual(Math.max(startedWith.length, 2) + 1);
    const left = await dumpsOnDisk();
    expect(left).toHaveLength(2);
    expect(left.filter((name) => startedWith.includes(name))).toEqual([]);
    const status = await readFile(join(stack.backupDir, 'status', 'backup.prom'), 'utf8');
    expect(status).toContain('tasks_backup_interval_seconds 2\n');
    expect(status).toContain('tasks_backup_dumps 2\n');
    const logs = await stack.compose.run(['logs', '--no-color', 'backup']);
    expect(logs.stdout).toMatch(/rotated out tasks-/);
    log(`schedule: ${seen.size} dumps seen, at most ${most} on disk at once`);
    // Back to the defaults; the drill below must not race with a 2 s schedule.
    await stack.setEnv('BACKUP_INTERVAL', '1h');
    await stack.setEnv('BACKUP_KEEP', '48');
    await stack.compose.run(['up', '-d', '--no-deps', 'backup']);
  });

  step('7. figures: dump and restore time and size for a stated number of rows', async () => {
    const rows = Number(process.env['BACKUP_FIGURE_ROWS'] ?? 100_000);
    await stack.sql(
      `INSERT INTO public.tasks (user_id, title, notes)
       SELECT (SELECT id FROM public.users ORDER BY id LIMIT 1), 'figure ' || n, repeat('x', 100)
       FROM generate_series(1, ${rows}) AS n;`,
    );
    const total = await stack.sql('SELECT count(*) FROM public.tasks;');
    let started = Date.now();
    const dumped = await stack.compose.run(['run', '--rm', '-T', 'backup', 'backup'], {
      allowFailure: true,
    });
    expect(dumped.code, dumped.stderr).toBe(0);
    const dumpMs = Date.now() - started;
    const name = dumped.stdout.trim();
    const size = (await stat(join(stack.backupDir, name))).size;
    started = Date.now();
    const restored = await stack.compose.run(['run', '--rm', '-T', 'backup', 'restore', name], {
      allowFailure: true,
    });
    expect(restored.code, restored.stderr).toBe(0);
    const restoreMs = Date.now() - started;
    expect(await stack.sql('SELECT count(*) FROM public.tasks;')).toBe(total);
    log(
      `figures: ${total.trim()} tasks (${rows} of 100-character notes): dump ${(size / 1e6).toFixed(2)} MB ` +
        `in ${dumpMs} ms, restore in ${restoreMs} ms (each including compose run, ~1 s)`,
    );
  });

  step(
    '8. major upgrade drill: the same dump restores into PostgreSQL 17, and the backend passes',
    async () => {
      // The README's procedure: stop the backends, switch the pinned image to 17 with a new volume,
      // start db, restore, start the backends.
      const override = join(stack.workDir, 'postgres-17.yml');
      await writeFile(
        override,
        [
          'services:',
          '  db:',
          `    image: ${STAND_INS.postgres17}`,
          '    volumes:',
          '      - pgdata17:/var/lib/postgresql/data',
          '  backup:',
          `    image: ${STAND_INS.postgres17}`,
          '  caddy:',
          `    image: ${STAND_INS.caddy}`,
          'volumes:',
          '  pgdata17: {}',
          '',
        ].join('\n'),
      );
      const upgraded = stack.withFiles([join(repo, 'docker-compose.yml'), override]);
      await upgraded.run(['stop', ...REPLICAS, 'backup']);
      // Removed first: a recreated container would keep the old volume (Compose reuses it).
      await upgraded.run(['rm', '--stop', '--force', 'db']);
      await upgraded.run(['up', '-d', '--no-deps', 'db']);
      await stack.healthy(['db'], upgraded);
      await upgraded.run(['up', '-d', '--no-deps', 'backup']);
      expect((await stack.sql('SHOW server_version_num;', upgraded)).trim()).toMatch(/^17\d{4}$/);
      const restored = await upgraded.run(['run', '--rm', '-T', 'backup', 'restore', DRILL_DUMP], {
        allowFailure: true,
      });
      expect(restored.code, restored.stderr).toBe(0);
      await upgraded.run(['up', '-d', '--no-deps', ...REPLICAS]);
      await stack.healthy(REPLICAS, upgraded);
      expect(await databaseExport(upgraded)).toBe(atDump.database);
      expect(await apiExport()).toBe(atDump.api);
      // The old volume is still there, untouched, until the operator removes it.
      expect(await volumesOf(stack.compose.name)).toEqual(
        expect.arrayContaining([`${stack.compose.name}_pgdata`, `${stack.compose.name}_pgdata17`]),
      );
      log(`upgrade drill: restored into PostgreSQL ${await serverVersion(STAND_INS.postgres17)}`);
    },
  );

  it('9. everything the stack created is removed', async () => {
    await stack.remove();
    expect(await stack.leftovers()).toEqual([]);
  });
});
