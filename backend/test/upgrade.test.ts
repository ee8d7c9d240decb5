import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../src/auth/tokens.ts';
import { migrate, migrationsDir } from '../src/migrate.ts';
import { api } from './support/api.ts';
import { connect, createTestDatabase, silentLogger } from './support/database.ts';
import { SyncClient, listAll } from './support/sync-client.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

/**
 * A database that lived under release 0.1.0 (migration 0001 only, rows written by its
 * statements), then upgraded: its sessions keep working and its tasks sync. Rows from before the
 * change counter all share change number 0, so a full sync must page through them by id.
 */

const legacyTasks = 7;
let app: TestApp;
let dir: string;
const user = { id: '', token: newToken(), email: 'legacy@example.com' };

beforeAll(async () => {
  const url = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'migrations-0001-'));
  const first = (await readdir(migrationsDir)).filter((f) => f.startsWith('0001_'));
  for (const file of first) await cp(path.join(migrationsDir, file), path.join(dir, file));
  const db = connect(url);
  try {
    await migrate(db, silentLogger, dir);
    // What release 0.1.0 wrote: a user, a session, tasks (some completed).
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO users (email, password_hash) VALUES ($1, 'scrypt$x') RETURNING id`,
      [user.email],
    );
    user.id = rows[0]!.id;
    await db.query(
      `INSERT INTO sessions (token_hash, user_id, expires_at)
       VALUES ($1, $2, now() + interval '20 days')`,
      [hashToken(user.token), user.id],
    );
    for (let i = 0; i < legacyTasks; i++) {
      await db.query(
        `INSERT INTO tasks (user_id, title, completed, updated_at)
         VALUES ($1, $2, $3, now() - make_interval(days => $4))`,
        [user.id, `legacy ${i}`, i % 2 === 0, i + 1],
      );
    }
    await migrate(db, silentLogger);
  } finally {
    await db.end();
  }
  app = await startTestApp({ DATABASE_URL: url });
});
afterAll(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a database upgraded from release 0.1.0', () => {
  it('when a session from before the upgrade is used, then it works and is listed, its last use being its creation', async () => {
    const client = api(app.baseUrl);
    expect((await client.get('/api/v1/me', { token: user.token })).body.id).toBe(user.id);
    const sessions = await client.get('/api/v1/me/sessions', { token: user.token });
    expect(sessions.body.items).toEqual([
      expect.objectContaining({ current: true, lastUsedAt: sessions.body.items[0].createdAt }),
    ]);
    // It got an id when listed, and keeps it.
    const again = await client.get('/api/v1/me/sessions', { token: user.token });
    expect(again.body.items[0].id).toBe(sessions.body.items[0].id);
  });

  it('when tasks completed before the upgrade are read, then their completedAt is their updatedAt, and an edit keeps it', async () => {
    const client = api(app.baseUrl);
    const tasks = await listAll(client, user.token);
    expect(tasks).toHaveLength(legacyTasks);
    for (const task of tasks) {
      expect(task.completedAt).toBe(task.completed ? task.updatedAt : null);
    }
    const done = tasks.find((t) => t.completed)!;
    const edited = await client.patch(`/api/v1/tasks/${done.id}`, {
      token: user.token,
      body: { title: 'renamed' },
    });
    expect(edited.body.completedAt).toBe(done.completedAt);
    expect(edited.body.updatedAt).not.toBe(done.updatedAt);
    const { rows } = await app.db.query<{ completed_at: Date }>(
      'SELECT completed_at FROM tasks WHERE id = $1',
      [done.id],
    );
    expect(rows[0]!.completed_at.toISOString()).toBe(done.completedAt);
  });

  it('when the old tasks (all at change 0) are synced one per page, then each comes exactly once, and later edits follow', async () => {
    const client = api(app.baseUrl);
    const sync = new SyncClient(client, user.token, 1);
    let pages = 0;
    let seen = 0;
    for (;;) {
      const page = await sync.step();
      pages++;
      seen += page.changes.length;
      if (!page.hasMore) break;
    }
    expect(seen).toBe(legacyTasks);
    expect(pages).toBe(legacyTasks);
    expect(sync.replica()).toEqual(await listAll(client, user.token));

    const [first] = sync.replica();
    await client.patch(`/api/v1/tasks/${first!.id}`, { token: user.token, body: { title: 'new' } });
    await sync.catchUp();
    expect(sync.tasks.get(first!.id)?.title).toBe('new');
    expect(sync.replica()).toEqual(await listAll(client, user.token));
  });
});

describe('the migration on a table prepared as its header says for large tables', () => {
  it('when the documented statements ran first (concurrently, outside a transaction), then the migration skips the builds and the schema is the same', async () => {
    const header = await readFile(
      path.join(migrationsDir, '0003_sync_and_account_lifecycle.sql'),
      'utf8',
    );
    const runbook = header
      .split('\n')
      // The runbook is the header's indented lines.
      .filter((line) => line.startsWith('--   '))
      .map((line) => line.slice(5))
      .join('\n')
      .split(';')
      .map((statement) => statement.trim())
      .filter(Boolean);
    expect(runbook).toHaveLength(5);
    const url = await createTestDatabase();
    const prepared = await mkdtemp(path.join(tmpdir(), 'migrations-0001-'));
    const db = connect(url);
    try {
      for (const file of (await readdir(migrationsDir)).filter((f) => f.startsWith('0001_'))) {
        await cp(path.join(migrationsDir, file), path.join(prepared, file));
      }
      await migrate(db, silentLogger, prepared);
      for (const statement of runbook) await db.query(statement);
      await migrate(db, silentLogger);
      const { rows } = await db.query<{ indexname: string }>(
        `SELECT indexname FROM pg_indexes WHERE tablename = 'tasks' ORDER BY indexname`,
      );
      expect(rows.map((r) => r.indexname)).toEqual([
        'tasks_pkey',
        'tasks_user_change_seq_idx',
        'tasks_user_completed_created_idx',
        'tasks_user_created_idx',
        'tasks_user_due_idx',
        'tasks_user_updated_idx',
      ]);
      const invalid = await db.query(
        `SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         WHERE c.relname = 'tasks' AND NOT i.indisvalid`,
      );
      expect(invalid.rows).toEqual([]);
    } finally {
      await db.end();
      await rm(prepared, { recursive: true, force: true });
    }
  });
});
