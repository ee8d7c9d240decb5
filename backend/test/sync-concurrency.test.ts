import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Db, Queryable } from '../src/db.ts';
import type { Task } from '../src/tasks/schemas.ts';
import { holdTransaction, lockWaiters } from './support/locks.ts';
import { SyncClient, listAll } from './support/sync-client.ts';
import { useTestApp } from './support/test-app.ts';
import { sleep, waitFor } from './support/wait.ts';

/**
 * Delta sync under concurrency: several writers create, edit, complete and delete one user's
 * tasks while a client syncs; once the writers stop and the client catches up, its replica must
 * equal the server's list exactly. The writers' scripts come from a seed, printed first;
 * `SYNC_SEED=<seed> npx vitest run backend/test/sync-concurrency.test.ts` replays them
 * (`SYNC_RUNS` sets how many scenarios, 8 by default). How the scripts interleave is up to the
 * scheduler, the pool and PostgreSQL: every run meets different interleavings.
 *
 * Beside the real client runs a naive one (`updated_at > since`, what most first attempts do),
 * reading the same tables; its outcome is printed, not asserted. The deterministic tests below
 * show an interleaving it always gets wrong and the real sync always gets right.
 */

const seed = Number(process.env['SYNC_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const runs = Number(process.env['SYNC_RUNS'] ?? 8);
console.log(`sync-concurrency: seed ${seed} (replay with SYNC_SEED=${seed})`);

// A pool large enough that the writers meet in PostgreSQL, not in the pool's queue.
const { client, app } = useTestApp({ DATABASE_POOL_MAX: '25' });

const figures = {
  runs: 0,
  writes: 0,
  syncRequests: 0,
  naiveDiverged: 0,
  replays: 0,
  refused: 0,
  ms: 0,
};
afterAll(() => {
  console.log(
    `sync-concurrency: ${figures.runs} scenarios in ${Math.round(figures.ms)} ms, ${figures.writes} writes ` +
      `(${figures.replays} replayed creates, ${figures.refused} refused as deleted), ` +
      `${figures.syncRequests} sync requests; the naive updated_at reader ended wrong in ` +
      `${figures.naiveDiverged} of ${figures.runs} (seed ${seed})`,
  );
});

type Op =
  | { kind: 'create'; clientId: boolean; title: string; completed: boolean }
  | { kind: 'retry-create' }
  | { kind: 'edit'; target: number; title: string }
  | { kind: 'complete'; target: number; completed: boolean }
  | { kind: 'delete'; target: number }
  | { kind: 'stamped-edit'; target: number; ms: number }
  | { kind: 'slow-commit'; target: number; ms: number }
  | { kind: 'pause'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      clientId: fc.boolean(),
      title: fc.string({ minLength: 1, maxLength: 8 }).map((t) => `t ${t}`),
      completed: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'retry-create' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('edit' as const),
      target: fc.nat(),
      title: fc.string({ minLength: 1, maxLength: 8 }).map((t) => `e ${t}`),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('complete' as const),
      target: fc.nat(),
      completed: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), target: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('stamped-edit' as const),
      target: fc.nat(),
      ms: fc.integer({ min: 0, max: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('slow-commit' as const),
      target: fc.nat(),
      ms: fc.integer({ min: 0, max: 12 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pause' as const),
      ms: fc.integer({ min: 0, max: 3 }),
    }),
  },
);

/**
 * Writers outside the API, in their own transactions: one that stamps updated_at itself and is
 * slow to write it (an import job, an operator's script: the case a timestamp cannot handle),
 * and one that holds its transaction open after writing (every other writer of the user waits).
 */
async function sqlWriter(db: Db, step: Op, userId: string, id: string): Promise<void> {
  if (step.kind === 'stamped-edit') {
    await db.withTransaction(async (tx) => {
      const { rows } = await tx.query<{ t: Date }>(
        `SELECT date_trunc('milliseconds', clock_timestamp()) AS t`,
      );
      await sleep(step.ms);
      await tx.query(
        `UPDATE tasks SET notes = 'stamped', version = version + 1, updated_at = $3
         WHERE id = $1 AND user_id = $2`,
        [id, userId, rows[0]!.t],
      );
    });
  } else if (step.kind === 'slow-commit') {
    await db.withTransaction(async (tx) => {
      await tx.query(
        `UPDATE tasks SET notes = 'slow', version = version + 1,
                updated_at = date_trunc('milliseconds', clock_timestamp())
         WHERE id = $1 AND user_id = $2`,
        [id, userId],
      );
      await sleep(step.ms);
    });
  }
}

const scenario = fc.record({
  writers: fc.array(fc.array(op, { minLength: 8, maxLength: 20 }), { minLength: 3, maxLength: 5 }),
  pageSize: fc.integer({ min: 1, max: 8 }),
  naivePageSize: fc.integer({ min: 1, max: 8 }),
});

/** What the server has, as the list endpoint shows it, ordered like SyncClient.replica(). */
const serverState = (token: string) => listAll(client, token);

/**
 * The naive delta sync: rows whose updated_at (or deleted_at) is after the newest one seen. It is
 * wrong because a transaction can take its timestamp, then commit after a reader has moved past it.
 */
class NaiveSync {
  readonly tasks = new Map<string, Task>();
  private since = new Date(0);

  constructor(
    private readonly db: Queryable,
    private readonly userId: string,
    private readonly limit: number,
  ) {}

  async step(): Promise<boolean> {
    const { rows } = await this.db.query<{
      id: string;
      deleted: boolean;
      at: Date;
      title: string | null;
      notes: string | null;
      completed: boolean | null;
      completed_at: Date | null;
      due_at: Date | null;
      created_at: Date | null;
      version: number | null;
    }>(
      `(SELECT id, false AS deleted, updated_at AS at, title, notes, completed, completed_at,
               due_at, created_at, version
        FROM tasks WHERE user_id = $1 AND updated_at > $2)
       UNION ALL
       (SELECT task_id, true, deleted_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL
        FROM task_tombstones WHERE user_id = $1 AND deleted_at > $2)
       ORDER BY at LIMIT $3`,
      [this.userId, this.since, this.limit + 1],
    );
    for (const row of rows.slice(0, this.limit)) {
      if (row.deleted) this.tasks.delete(row.id);
      else
        this.tasks.set(row.id, {
          id: row.id,
          title: row.title!,
          notes: row.notes!,
          completed: row.completed!,
          completedAt: row.completed_at?.toISOString() ?? null,
          dueAt: row.due_at?.toISOString() ?? null,
          createdAt: row.created_at!.toISOString(),
          updatedAt: row.at.toISOString(),
          version: row.version!,
        });
      this.since = row.at;
    }
    return rows.length > this.limit;
  }

  async catchUp(): Promise<void> {
    while (await this.step());
  }

  replica(): Task[] {
    return [...this.tasks.values()].sort(
      (a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id),
    );
  }
}

describe('delta sync under concurrent writers', () => {
  it(
    'when writers race and a client syncs throughout, then after catching up its replica equals the server exactly',
    async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async ({ writers, pageSize, naivePageSize }) => {
          figures.runs++;
          const started = performance.now();
          const { token, id: userId } = await client.register();
          const known: string[] = [];
          let writing = true;

          const write = async (script: Op[]) => {
            let lastCreate: { id: string; title: string; completed: boolean } | undefined;
            for (const step of script) {
              const target = (n: number) => known[n % Math.max(known.length, 1)];
              let res;
              switch (step.kind) {
                case 'create': {
                  const body = {
                    title: step.title,
                    completed: step.completed,
                    ...(step.clientId && { id: crypto.randomUUID() }),
                  };
                  res = await client.post('/api/v1/tasks', { token, body });
                  expect(res.status).toBe(201);
                  known.push(res.body.id);
                  if (step.clientId) lastCreate = body as typeof lastCreate;
                  break;
                }
                case 'retry-create':
                  if (!lastCreate) continue;
                  // A retry whose first answer was lost: replays, unless the task was deleted since.
                  res = await client.post('/api/v1/tasks', { token, body: lastCreate });
                  expect([201, 409]).toContain(res.status);
                  if (res.status === 201) {
                    figures.replays++;
                    expect(res.headers.get('idempotent-replayed')).toBe('true');
                  } else {
                    figures.refused++;
                    expect(res.body.type).toBe('urn:tasks-backend:problem:task-deleted');
                  }
                  break;
                case 'edit':
                case 'complete': {
                  const id = target(step.target);
                  if (!id) continue;
                  const body =
                    step.kind === 'edit' ? { title: step.title } : { completed: step.completed };
                  res = await client.patch(`/api/v1/tasks/${id}`, { token, body });
                  expect([200, 404]).toContain(res.status);
                  break;
                }
                case 'delete': {
                  const id = target(step.target);
                  if (!id) continue;
                  res = await client.delete(`/api/v1/tasks/${id}`, { token });
                  expect([204, 404]).toContain(res.status);
                  break;
                }
                case 'stamped-edit':
                case 'slow-commit': {
                  const id = target(step.target);
                  if (!id) continue;
                  await sqlWriter(app().db, step, userId, id);
                  break;
                }
                case 'pause':
                  await sleep(step.ms);
                  continue;
              }
              figures.writes++;
            }
          };

          const sync = new SyncClient(client, token, pageSize);
          const naive = new NaiveSync(app().db, userId, naivePageSize);
          const readers = (async () => {
            while (writing) {
              await sync.step();
              await naive.step();
            }
          })();
          const writes = Promise.all(writers.map(write)).finally(() => (writing = false));
          // Both settle before the scenario ends, whichever fails: nothing outlives it.
          for (const outcome of await Promise.allSettled([writes, readers])) {
            if (outcome.status === 'rejected') throw outcome.reason;
          }
          await sync.catchUp();
          await naive.catchUp();
          figures.syncRequests += sync.requests;

          const server = await serverState(token);
          expect(sync.replica()).toEqual(server);
          if (JSON.stringify(naive.replica()) !== JSON.stringify(server)) figures.naiveDiverged++;
          figures.ms += performance.now() - started;
        }),
        { seed, numRuns: runs, endOnFailure: true },
      );
    },
    Math.max(30_000, runs * 2_000),
  );
});

describe('the interleavings that defeat a timestamp (or any number taken at write time)', () => {
  it('when a writer takes its timestamp, another commits a later one, a reader passes it, and then the first commits: the naive reader misses it, the real sync does not', async () => {
    const { token, id: userId } = await client.register();
    const early = (await client.post('/api/v1/tasks', { token, body: { title: 'A' } })).body;
    const late = (await client.post('/api/v1/tasks', { token, body: { title: 'B' } })).body;
    const sync = new SyncClient(client, token);
    const naive = new NaiveSync(app().db, userId, 100);
    await sync.catchUp();
    await naive.catchUp();

    // Transaction X reads the clock for its write (as any code that stamps rows itself does),
    // then is slow to write and commit.
    const x = holdTransaction(
      app().db,
      async (tx) =>
        (await tx.query<{ t: Date }>(`SELECT date_trunc('milliseconds', clock_timestamp()) AS t`))
          .rows[0]!.t,
      async (tx, t) => {
        await tx.query(
          `UPDATE tasks SET title = 'A, edited by X', updated_at = $3, version = version + 1
           WHERE id = $1 AND user_id = $2`,
          [early.id, userId, t],
        );
      },
    );
    const xTime = await x.held;
    await waitFor(
      "the clock (in milliseconds, as tasks keep it) to pass X's reading",
      async () =>
        (
          await app().db.query<{ later: boolean }>(
            `SELECT date_trunc('milliseconds', clock_timestamp()) > $1 AS later`,
            [xTime],
          )
        ).rows[0]!.later,
      { timeoutMs: 1000, intervalMs: 1 },
    );
    // Y takes a later timestamp and commits first; both readers pass it.
    const y = await client.patch(`/api/v1/tasks/${late.id}`, { token, body: { title: 'B, by Y' } });
    expect(y.status).toBe(200);
    await sync.catchUp();
    await naive.catchUp();
    expect(sync.tasks.get(late.id)?.title).toBe('B, by Y');
    expect(naive.tasks.get(late.id)?.title).toBe('B, by Y');
    // Then X commits.
    x.release();
    expect(await x.outcome).toBe('committed');
    await sync.catchUp();
    await naive.catchUp();

    const server = await serverState(token);
    expect(server.find((t) => t.id === early.id)?.title).toBe('A, edited by X');
    expect(sync.replica()).toEqual(server);
    expect(naive.tasks.get(early.id)?.title).toBe('A'); // missed, for good
  });

  it("when a writer's transaction is open, a later writer of the same user waits for it, so no reader can pass the earlier change", async () => {
    const { token, id: userId } = await client.register();
    const a = (await client.post('/api/v1/tasks', { token, body: { title: 'A' } })).body;
    const b = (await client.post('/api/v1/tasks', { token, body: { title: 'B' } })).body;
    const sync = new SyncClient(client, token);
    await sync.catchUp();

    // X writes A, which takes the user's next change number, and stays open.
    const x = holdTransaction(app().db, async (tx) => {
      await tx.query(`UPDATE tasks SET title = 'A by X' WHERE id = $1 AND user_id = $2`, [
        a.id,
        userId,
      ]);
    });
    await x.held;
    // Y, through the API, must wait for X: it cannot take a number, let alone commit one.
    const y = client.patch(`/api/v1/tasks/${b.id}`, { token, body: { title: 'B by Y' } });
    await lockWaiters(app().db, 1, "Y's UPDATE to wait for a lock", 'UPDATE tasks');
    const during = await sync.step();
    expect(during).toMatchObject({ changes: [], deleted: [], hasMore: false });

    x.release();
    expect(await x.outcome).toBe('committed');
    expect((await y).status).toBe(200);
    await sync.catchUp();
    expect(sync.replica()).toEqual(await serverState(token));
    expect(sync.tasks.get(a.id)?.title).toBe('A by X');
    const seqs = await app().db.query<{ id: string; change_seq: string }>(
      'SELECT id, change_seq FROM tasks WHERE user_id = $1',
      [userId],
    );
    const seqOf = Object.fromEntries(seqs.rows.map((r) => [r.id, Number(r.change_seq)]));
    expect(seqOf[b.id]).toBe(seqOf[a.id]! + 1); // commit order is counter order
  });
});
