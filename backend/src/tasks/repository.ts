import { pgErrorCode, type Queryable } from '../db.ts';
import { AppError, conflict, unauthorized } from '../errors.ts';
import type { ListPosition, SyncPosition } from './cursors.ts';
import type { NewTask, Task, TaskPatch, TaskSort } from './schemas.ts';

// Tasks completed before migration 0003 have no completed_at until their next write (the trigger
// then stores this same value): their last change is the best knowledge of when.
const completedAt = 'COALESCE(completed_at, CASE WHEN completed THEN updated_at END)';
const columns = `id, title, notes, completed, ${completedAt} AS completed_at, due_at, created_at,
  updated_at, version`;

// One clock reading for both timestamps: two column defaults would read the clock twice, and a
// new task could show an updatedAt a millisecond after its createdAt. The triggers of migration
// 0003 stamp change_seq and completed_at, and refuse an id that was deleted (SQLSTATE TK001).
const newRow = `
  SELECT COALESCE($6::uuid, gen_random_uuid()), $1, $2, COALESCE($3, ''), COALESCE($4, false),
         $5, now.t, now.t, $7
  FROM (SELECT date_trunc('milliseconds', clock_timestamp()) AS t) now`;
const insertColumns = `id, user_id, title, notes, completed, due_at, created_at, updated_at,
  create_fingerprint`;
const insertTask = `INSERT INTO tasks (${insertColumns}) ${newRow} RETURNING ${columns}`;
// With the client's id: the task of that id, if it exists, or the new one (`existed` tells).
// Lock order: every other task writer locks the task row, then the user's change counter (the
// trigger). An INSERT takes the counter first (its BEFORE trigger) and only then checks the key,
// waiting for a deletion of that row in progress: a cycle. So the row is looked up first, waiting
// for such a deletion while holding nothing (FOR KEY SHARE waits for deletions, not for edits),
// and the INSERT only runs when there is no row. (A row created and then deleted by others in
// the instant between the two can still close the cycle; PostgreSQL then fails one of them.)
const insertTaskWithId = `
  WITH existing AS (
    SELECT ${columns}, create_fingerprint FROM tasks WHERE user_id = $1 AND id = $6 FOR KEY SHARE
  ), inserted AS (
    INSERT INTO tasks (${insertColumns}) ${newRow} WHERE NOT EXISTS (SELECT 1 FROM existing)
    ON CONFLICT (user_id, id) DO NOTHING
    RETURNING ${columns}, create_fingerprint
  )
  SELECT *, false AS existed FROM inserted
  UNION ALL
  SELECT *, true FROM existing`;
// When a concurrent create of the same id won the race: its row, or its tombstone.
const selectExisting = `
  SELECT ${columns}, create_fingerprint,
         EXISTS (SELECT 1 FROM task_tombstones WHERE user_id = $1 AND task_id = $2) AS deleted
  FROM (SELECT 1) one LEFT JOIN tasks ON user_id = $1 AND id = $2`;
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
  completed_at: Date | null;
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
  completedAt: row.completed_at?.toISOString() ?? null,
  dueAt: row.due_at?.toISOString() ?? null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  version: row.version,
});

const taskDeleted = () =>
  new AppError(
    'task-deleted',
    'A task with this id was created and has been deleted since; it cannot be created again.',
  );

export interface Inserted {
  readonly task: Task;
  /** The task existed already, created by a request with the same fingerprint. */
  readonly replayed: boolean;
}

/**
 * Inserts a task. With `id`, the client's id: if the caller has that task already, created by a
 * request with the same `fingerprint`, it is returned as it is now (`replayed`); another request
 * is a conflict, and an id whose task was deleted stays deleted.
 */
export async function insert(
  db: Queryable,
  userId: string,
  input: NewTask,
  fingerprint?: Buffer,
): Promise<Inserted> {
  type Row = TaskRow & { create_fingerprint: Buffer | null; existed?: boolean; deleted?: boolean };
  const sameRequest = (row: Row) =>
    fingerprint !== undefined && row.create_fingerprint?.equals(fingerprint) === true;
  let rows: Row[];
  try {
    ({ rows } = await db.query<Row>(input.id === undefined ? insertTask : insertTaskWithId, [
      userId,
      input.title,
      input.notes ?? null,
      input.completed ?? null,
      input.dueAt ?? null,
      input.id ?? null,
      input.id === undefined ? null : (fingerprint ?? null),
    ]));
  } catch (err) {
    if (pgErrorCode(err) === 'TK001') throw taskDeleted();
    // The user was deleted while this request waited for its row (the account deletion's lock).
    if (pgErrorCode(err) === '23503') throw unauthorized('The account no longer exists.');
    throw err;
  }
  let row = rows[0];
  if (!row) {
    row = (await db.query<Row>(selectExisting, [userId, input.id])).rows[0]!;
    if (row.deleted) throw taskDeleted();
    if (row.id === null) throw conflict('A task with this id was being created; retry.');
    row.existed = true;
  }
  if (!row.existed) return { task: toTask(row), replayed: false };
  if (!sameRequest(row)) {
    throw conflict('A task with this id exists already, created with a different body.');
  }
  return { task: toTask(row), replayed: true };
}

export async function find(db: Queryable, userId: string, id: string): Promise<Task | undefined> {
  const { rows } = await db.query<TaskRow>(selectTask, [id, userId]);
  return rows[0] && toTask(rows[0]);
}

export interface Page {
  items: Task[];
  /** The last item's position, when there may be more. */
  last: ListPosition | undefined;
}

export interface ListOptions {
  readonly limit: number;
  readonly sort: TaskSort;
  readonly after?: ListPosition | undefined;
  readonly completed?: boolean | undefined;
  readonly dueAfter?: string | undefined;
  readonly dueBefore?: string | undefined;
}

// Each order has an index that starts with user_id and ends with id (the tie-breaker), so a page
// is one index range scan from the cursor on: tasks_user_created_idx, tasks_user_updated_idx,
// tasks_user_due_idx.
const sortColumns = {
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  dueAt: 'due_at',
} as const satisfies Record<TaskSort, string>;

/** The SQL of one list page (exported so a test can EXPLAIN exactly what runs). */
export function listQuery(
  userId: string,
  options: ListOptions,
): { text: string; params: unknown[] } {
  const params: unknown[] = [userId];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  const filters = ['user_id = $1'];
  if (options.completed !== undefined) filters.push(`completed = ${param(options.completed)}`);
  if (options.dueAfter !== undefined) filters.push(`due_at >= ${param(options.dueAfter)}`);
  if (options.dueBefore !== undefined) filters.push(`due_at < ${param(options.dueBefore)}`);
  const where = (...more: string[]) => [...filters, ...more].join(' AND ');
  const after = options.after;
  const limit = param(options.limit + 1);

  if (options.sort !== 'dueAt') {
    const column = sortColumns[options.sort];
    // Newest first. A row comparison walks the index from the cursor on.
    const keyset = after
      ? [`(${column}, id) < (${param(after.value)}::timestamptz, ${param(after.id)}::uuid)`]
      : [];
    return {
      text: `SELECT ${columns} FROM tasks WHERE ${where(...keyset)}
             ORDER BY ${column} DESC, id DESC LIMIT ${limit}`,
      params,
    };
  }
  // Soonest first, tasks without a due date last (by id). NULLs are outside any row comparison,
  // so past a dated cursor the page is the dated tasks after it, then the undated ones: two
  // index range scans rather than one scan that filters out everything before the cursor.
  const order = 'ORDER BY due_at ASC NULLS LAST, id ASC';
  if (!after) {
    return {
      text: `SELECT ${columns} FROM tasks WHERE ${where()} ${order} LIMIT ${limit}`,
      params,
    };
  }
  if (after.value === null) {
    return {
      text: `SELECT ${columns} FROM tasks
             WHERE ${where('due_at IS NULL', `id > ${param(after.id)}::uuid`)}
             ${order} LIMIT ${limit}`,
      params,
    };
  }
  const dated = `(due_at, id) > (${param(after.value)}::timestamptz, ${param(after.id)}::uuid)`;
  return {
    text: `(SELECT ${columns} FROM tasks WHERE ${where(dated)} ${order} LIMIT ${limit})
           UNION ALL
           (SELECT ${columns} FROM tasks WHERE ${where('due_at IS NULL')} ${order} LIMIT ${limit})
           ${order} LIMIT ${limit}`,
    params,
  };
}

export async function list(db: Queryable, userId: string, options: ListOptions): Promise<Page> {
  const { text, params } = listQuery(userId, options);
  const { rows } = await db.query<TaskRow>(text, params);
  const items = rows.slice(0, options.limit).map(toTask);
  const lastItem = items.at(-1);
  return {
    items,
    last:
      rows.length > options.limit && lastItem
        ? { sort: options.sort, value: lastItem[options.sort], id: lastItem.id }
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

// The user's counter and the changes after a position, in ONE statement: one snapshot, so every
// change numbered up to `head` is visible in it (the ordering argument is in migration 0003, at
// next_change_seq). The users row tells a user without changes (head 0) from no user at all. Live tasks and tombstones share the counter; each branch reads at most
// `limit` rows of its index in order, and the merge keeps the first `limit`. (The rows come out in
// that order, one user row joined to them; `changes` sorts them again rather than rely on it.)
export const selectChanges = `
  SELECT COALESCE(c.change_seq, 0) AS head, COALESCE(c.purged_change_seq, 0) AS purged, e.*
  FROM users u
  LEFT JOIN task_change_counters c ON c.user_id = u.id
  LEFT JOIN LATERAL (
    (SELECT t.change_seq AS seq, NULL::timestamptz AS deleted_at, ${columns}
     FROM tasks t
     WHERE t.user_id = u.id AND (t.change_seq, t.id) > ($2::bigint, $3::uuid)
     ORDER BY t.change_seq, t.id LIMIT $4)
    UNION ALL
    (SELECT d.change_seq, d.deleted_at, d.task_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
     FROM task_tombstones d
     WHERE $5 AND d.user_id = u.id AND (d.change_seq, d.task_id) > ($2::bigint, $3::uuid)
     ORDER BY d.change_seq, d.task_id LIMIT $4)
    ORDER BY seq, id LIMIT $4
  ) e ON true
  WHERE u.id = $1`;

/** Sorts after every id: "past everything numbered `seq`". */
const afterAllIds = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

export type ChangeEntry =
  | { readonly kind: 'changed'; readonly seq: number; readonly task: Task }
  | {
      readonly kind: 'deleted';
      readonly seq: number;
      readonly id: string;
      readonly deletedAt: string;
    };

export interface ChangeLog {
  /** The user's change counter: every change numbered up to it is in `entries` or before them. */
  readonly head: number;
  /** Tombstones numbered up to this have been purged. */
  readonly purged: number;
  /** In counter order, at most `limit + 1` (one more tells that there are more). */
  readonly entries: ChangeEntry[];
}

/**
 * The changes after `after` (tasks as they are now, and tombstones unless `withTombstones` is
 * false), at most `limit + 1`; undefined when the user does not exist.
 */
export async function changes(
  db: Queryable,
  userId: string,
  options: { after: SyncPosition; withTombstones: boolean; limit: number },
): Promise<ChangeLog | undefined> {
  // A row without an entry (seq NULL) only carries head and purged; a tombstone has deleted_at.
  type ChangeRow = TaskRow & {
    head: string;
    purged: string;
    seq: string | null;
    deleted_at: Date | null;
  };
  const { rows } = await db.query<ChangeRow>(selectChanges, [
    userId,
    options.after.seq,
    options.after.id ?? afterAllIds,
    options.limit + 1,
    options.withTombstones,
  ]);
  const first = rows[0];
  if (!first) return undefined;
  const entries = rows
    .filter((row) => row.seq !== null)
    // Lower-case hexadecimal strings compare as PostgreSQL compares uuids.
    .sort((a, b) => Number(a.seq) - Number(b.seq) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((row): ChangeEntry =>
      row.deleted_at
        ? {
            kind: 'deleted',
            seq: Number(row.seq),
            id: row.id,
            deletedAt: row.deleted_at.toISOString(),
          }
        : { kind: 'changed', seq: Number(row.seq), task: toTask(row) },
    );
  return { head: Number(first.head), purged: Number(first.purged), entries };
}
