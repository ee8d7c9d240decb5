import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { sleep } from '../backend/test/support/wait.ts';
import type { Fixture } from './database.ts';

/**
 * Other devices at work while the sync scenario runs: about `perSecond` task changes a second,
 * spread over the users at random (6 in 10 edit a task, 2 create one, 2 delete one, so tombstones
 * keep coming), written in SQL as the database owner. The change counter's triggers number them
 * whoever writes, and the owner's statements are not counted against any target.
 */
export interface TaskWriter {
  /** Edits the user's fixture task (its title only) and deletes another of their tasks, now. */
  touch(fixture: Fixture): Promise<void>;
  /** Starts writing in the background; the function returned stops it. */
  start(): () => Promise<void>;
  end(): Promise<void>;
}

// A random task of the user: the first at or after a random id, else (past the last id) the
// first of all; two probes of the primary key.
const randomTask = (except: string) => {
  const first = (from: string) =>
    `(SELECT id FROM tasks WHERE user_id = $1 AND id >= ${from} AND id <> '${except}' ORDER BY id LIMIT 1)`;
  return `COALESCE(${first('$2')}, ${first("'00000000-0000-0000-0000-000000000000'")})`;
};

export async function createTaskWriter(
  url: string,
  fixtures: readonly Fixture[],
  perSecond = 20,
): Promise<TaskWriter> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench-writer' });
  await client.connect();
  const edit = (fixture: Fixture, id: string) =>
    client.query(
      `UPDATE tasks SET title = 'Edited elsewhere', version = version + 1,
         updated_at = date_trunc('milliseconds', clock_timestamp())
       WHERE user_id = $1 AND id = $2`,
      [fixture.userId, id],
    );
  const remove = (fixture: Fixture) =>
    client.query(`DELETE FROM tasks WHERE user_id = $1 AND id = ${randomTask(fixture.taskId)}`, [
      fixture.userId,
      randomUUID(),
    ]);
  const change = async (fixture: Fixture) => {
    const dice = Math.random();
    if (dice < 0.6) {
      await client.query(
        `UPDATE tasks SET completed = NOT completed, version = version + 1,
           updated_at = date_trunc('milliseconds', clock_timestamp())
         WHERE user_id = $1 AND id = ${randomTask(fixture.taskId)}`,
        [fixture.userId, randomUUID()],
      );
    } else if (dice < 0.8) {
      await client.query(`INSERT INTO tasks (user_id, title) VALUES ($1, 'Created elsewhere')`, [
        fixture.userId,
      ]);
    } else {
      await remove(fixture);
    }
  };
  return {
    async touch(fixture) {
      const edited = await edit(fixture, fixture.taskId);
      const removed = await remove(fixture);
      if (edited.rowCount !== 1 || removed.rowCount !== 1) {
        throw new Error(`could not edit and delete a task of user ${fixture.userId}`);
      }
    },
    start() {
      let running = true;
      const loop = (async () => {
        const interval = 1000 / perSecond;
        let due = performance.now();
        while (running) {
          await change(fixtures[Math.floor(Math.random() * fixtures.length)]!);
          // Pacing, not waiting for a condition: a steady rate, without bursts to catch up.
          due = Math.max(due + interval, performance.now());
          await sleep(due - performance.now());
        }
      })();
      return async () => {
        running = false;
        await loop;
      };
    },
    end: () => client.end(),
  };
}
