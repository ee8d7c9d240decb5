import type { Queryable } from '../db.ts';
import type { NewTask, Task, TaskPatch } from './schemas.ts';

const columns = 'id, title, notes, completed, due_at, created_at, updated_at, version';

// One clock reading for both timestamps: two column defaults would read the clock twice, and a
// new task could show an updatedAt a millisecond after its createdAt.
const insertTask = `
  INSERT INTO tasks (user_id, title, notes, completed, due_at, created_at, updated_at)
  SELECT $1, $2, COALESCE($3, ''), COALESCE($4, false), $5, now.t, now.t
  FROM (SELECT date_trunc('milliseconds', clock_timestamp()) AS t) now
  RETURNING ${columns}`;
const selectTask = `SELECT ${columns} FROM tasks WHERE id = $1 AND user_id = $2`;
const selectVersion = `SELECT version FROM tasks WHERE id = $1 AND user_id = $2`;
const deleteTask = `
  DELETE FROM tasks
  WHERE id = $1 AND user_id = $2 AND ($3::integer[] IS NULL OR version = ANY ($3))`;

interface TaskRow {
  [column: string]: unknown;
  id: string;
  title: string;
  notes: string;
  completed: boolean;
  due_at: Date | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const toTask = (row: TaskRow): Task => ({
  id: row.id,
  title: row.title,
  notes: row.notes,
  completed: row.completed,
  dueAt: row.due_at?.toISOString() ?? null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  version: row.version,
});

export async function insert(db: Queryable, userId: string, input: NewTask): Promise<Task> {
  const { rows } = await db.query<TaskRow>(insertTask, [
    userId,
    input.title,
    input.notes ?? null,
    input.completed ?? null,
    input.dueAt ?? null,
  ]);
  return toTask(rows[0]!);
}

export async function find(db: Queryable, userId: string, id: string): Promise<Task | undefined> {
  const { rows } = await db.query<TaskRow>(selectTask, [id, userId]);
  return rows[0] && toTask(rows[0]);
}

/** Where a page ends in the (created_at DESC, id DESC) order. */
export interface Position {
  readonly createdAt: string;
  readonly id: string;
}

export interface Page {
  items: Task[];
  /** The last item's position, when there may be more. */
  last: Position | undefined;
}

export async function list(
  db: Queryable,
  userId: string,
  options: { limit: number; after?: Position | undefined; completed?: boolean | undefined },
): Promise<Page> {
  const params: unknown[] = [userId];
  const where = ['user_id = $1'];
  if (options.completed !== undefined) {
    params.push(options.completed);
    where.push(`completed = $${params.length}`);
  }
  if (options.after) {
    params.push(options.after.createdAt, options.after.id);
    // Row comparison walks the (user_id, created_at DESC, id DESC) index from the cursor on.
    where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(options.limit + 1);
  const { rows } = await db.query<TaskRow>(
    `SELECT ${columns} FROM tasks WHERE ${where.join(' AND ')}
     ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  const items = rows.slice(0, options.limit).map(toTask);
  const lastItem = items.at(-1);
  return {
    items,
    last:
      rows.length > options.limit && lastItem
        ? { createdAt: lastItem.createdAt, id: lastItem.id }
        : undefined,
  };
}

/**
 * Applies `patch` atomically. With `expectedVersions`, only when the row still has one of those
 * versions (optimistic concurrency: of racing writers with the same If-Match exactly one wins).
 * Returns the new task, 'stale' when the version did not match, or undefined when there is none.
 */
export async function update(
  db: Queryable,
  userId: string,
  id: string,
  patch: TaskPatch,
  expectedVersions: readonly number[] | undefined,
): Promise<Task | 'stale' | undefined> {
  const fields: [string, unknown][] = [];
  if (patch.title !== undefined) fields.push(['title', patch.title]);
  if (patch.notes !== undefined) fields.push(['notes', patch.notes]);
  if (patch.completed !== undefined) fields.push(['completed', patch.completed]);
  if (patch.dueAt !== undefined) fields.push(['due_at', patch.dueAt]);
  const params: unknown[] = [
    id,
    userId,
    expectedVersions ?? null,
    ...fields.map(([, value]) => value),
  ];
  const sets = fields.map(([column], i) => `${column} = $${i + 4}`);
  const { rows } = await db.query<TaskRow>(
    `UPDATE tasks
     SET ${sets.join(', ')}, version = version + 1,
         updated_at = date_trunc('milliseconds', clock_timestamp())
     WHERE id = $1 AND user_id = $2 AND ($3::integer[] IS NULL OR version = ANY ($3))
     RETURNING ${columns}`,
    params,
  );
  if (rows[0]) return toTask(rows[0]);
  if (expectedVersions === undefined) return undefined;
  const exists = await db.query(selectVersion, [id, userId]);
  return exists.rowCount === 1 ? 'stale' : undefined;
}

/**
 * Deletes the task; with `expectedVersions` (If-Match) only while it still has one of them.
 * Returns whether it was deleted, 'stale' when the version did not match, or undefined when there
 * is none.
 */
export async function remove(
  db: Queryable,
  userId: string,
  id: string,
  expectedVersions: readonly number[] | undefined,
): Promise<true | 'stale' | undefined> {
  const { rowCount } = await db.query(deleteTask, [id, userId, expectedVersions ?? null]);
  if (rowCount === 1) return true;
  if (expectedVersions === undefined) return undefined;
  const exists = await db.query(selectVersion, [id, userId]);
  return exists.rowCount === 1 ? 'stale' : undefined;
}
