import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
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
  });

  it('when tasks completed before the upgrade are read, then their completedAt is their updatedAt', async () => {
    const tasks = await listAll(api(app.baseUrl), user.token);
    expect(tasks).toHaveLength(legacyTasks);
    for (const task of tasks) {
      expect(task.completedAt).toBe(task.completed ? task.updatedAt : null);
    }
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
