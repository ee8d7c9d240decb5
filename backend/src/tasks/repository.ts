import {
  callerColumns,
  callerCte,
  callerParams,
  ownRows,
  type Caller,
  type CallerRow,
} from '../auth/caller.ts';
import { pgErrorCode, type Queryable } from '../db.ts';
import { AppError, conflict, unauthorized } from '../errors.ts';
import type { ListPosition, SyncPosition } from './cursors.ts';
import type { NewTask, Task, TaskPatch, TaskSort } from './schemas.ts';

// Tasks completed before migration 0003 have no completed_at until their next write (the trigger
// then stores this same value): their last change is the best knowledge of when.
const completedAt = 'COALESCE(completed_at, CASE WHEN completed THEN updated_at END)';
const columns = `id, title, notes, completed, ${completedAt} AS completed_at, due_at, created_at,
  updated_at, version`;

// Every statement of a request checks the caller's session itself (auth/caller.ts), so a
// request makes one round trip: parameters $1-$3 are the caller's, the statement's own start at
// $4, and `caller.user_id` is the user whose tasks it may touch. A statement returns one row per
// result joined to the caller's row, or a single caller row with NULL task columns when there is
// no result; no row at all means the token is not valid (ownRows).
const forCaller = (work: string) =>
  `SELECT ${callerColumns}, w.* FROM caller LEFT JOIN LATERAL (${work}) w ON true`;
const withCaller = (ctes: string, final: string) => `WITH ${callerCte}, ${ctes} ${final}`;

// One clock reading for both timestamps: two column defaults would read the clock twice, and a
// new task could show an updatedAt a millisecond after its createdAt. The triggers of migration
// 0003 stamp change_seq and completed_at, and refuse an id that was deleted (SQLSTATE TK001).
// $4 title, $5 notes, $6 completed, $7 due_at, $8 the client's id, $9 the request's fingerprint.
const newRow = `
  SELECT COALESCE($8::uuid, gen_random_uuid()), caller.user_id, $4, COALESCE($5, ''),
         COALESCE($6, false), $7, now.t, now.t, $9
  FROM caller, (SELECT date_trunc('milliseconds', clock_timestamp()) AS t) now`;
const insertColumns = `id, user_id, title, notes, completed, due_at, created_at, updated_at,
  create_fingerprint`;
const insertTask = withCaller(
  `w AS (INSERT INTO tasks (${insertColumns}) ${newRow} RETURNING ${columns})`,
  `SELECT ${callerColumns}, w.* FROM caller LEFT JOIN w ON true`,
);
// With the client's id: the task of that id, if it exists, or the new one (`existed` tells).
// Lock order: every other task writer locks the task row, then the user's change counter (the
// trigger). An INSERT takes the counter first (its BEFORE trigger) and only then checks the key,
// waiting for a deletion of that row in progress: a cycle. So the row is looked up first, waiting
// for such a deletion while holding nothing (FOR KEY SHARE waits for deletions, not for edits),
// and the INSERT only runs when there is no row. (A row created and then deleted by others in
// the instant between the two can still close the cycle; PostgreSQL then fails one of them.)
const insertTaskWithId = withCaller(
  `existing AS (
    SELECT ${columns}, create_fingerprint FROM tasks
    WHERE user_id = (SELECT user_id FROM caller) AND id = $8 FOR KEY SHARE
  ), inserted AS (
    INSERT INTO tasks (${insertColumns}) ${newRow} WHERE NOT EXISTS (SELECT 1 FROM existing)
    ON CONFLICT (user_id, id) DO NOTHING
    RETURNING ${columns}, create_fingerprint
  ), w AS (
    SELECT *, false AS existed FROM inserted
    UNION ALL
    SELECT *, true FROM existing
  )`,
  `SELECT ${callerColumns}, w.* FROM caller LEFT JOIN w ON true`,
);
// When a concurrent create of the same id won the race: its row, or its tombstone. (The caller
// is known by now: this follows a statement that checked the session.)
const selectExisting = `
  SELECT ${columns}, create_fingerprint,
         EXISTS (SELECT 1 FROM task_tombstones WHERE user_id = $1 AND task_id = $2) AS deleted
  FROM (SELECT 1) one LEFT JOIN tasks ON user_id = $1 AND id = $2`;
const selectTask = `WITH ${callerCte} ${forCaller(
  `SELECT ${columns} FROM tasks WHERE user_id = caller.user_id AND id = $4`,
)}`;
// The version before the statement (its snapshot) tells "not there" from "changed since".
const currentVersion = '(SELECT version FROM tasks WHERE user_id = caller.user_id AND id = $4)';
const deleteTask = withCaller(
  `w AS (
    DELETE FROM tasks
    WHERE user_id = (SELECT user_id FROM caller) AND id = $4
      AND ($5::integer[] IS NULL OR version = ANY ($5))
    RETURNING id)`,
  `SELECT ${callerColumns}, w.id, ${currentVersion} AS current_version
   FROM caller LEFT JOIN w ON true`,
);

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
  caller: Caller,
  input: NewTask,
  fingerprint?: Buffer,
): Promise<Inserted> {
  type Row = TaskRow &
    CallerRow & { create_fingerprint: Buffer | null; existed?: boolean; deleted?: boolean };
  const sameRequest = (row: Row) =>
    fingerprint !== undefined && row.create_fingerprint?.equals(fingerprint) === true;
  let rows: Row[];
  try {
    ({ rows } = await db.query<Row>(input.id === undefined ? insertTask : insertTaskWithId, [
      ...callerParams(caller),
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
  let row = (await ownRows(db, caller, rows))[0]!;
  if (row.id === null) {
    const userId = row.caller_id;
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

export async function find(db: Queryable, caller: Caller, id: string): Promise<Task | undefined> {
  const { rows } = await db.query<TaskRow & CallerRow>(selectTask, [...callerParams(caller), id]);
  const row = (await ownRows(db, caller, rows))[0]!;
  return row.id === null ? undefined : toTask(row);
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

/** The SQL of one list page for the caller (exported so a test can EXPLAIN exactly what runs). */
export function listQuery(
  caller: Caller,
  options: ListOptions,
): { text: string; params: unknown[] } {
  const { text, params } = pageQuery(options);
  return {
    text: `WITH ${callerCte} ${forCaller(text)}`,
    params: [...callerParams(caller), ...params],
  };
}

/** One page of the user `caller.user_id`: its parameters start at $4, after the caller's. */
function pageQuery(options: ListOptions): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length + 3}`;
  };
  const filters = ['user_id = caller.user_id'];
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

/** Lower-case hexadecimal uuids compare as strings as PostgreSQL compares them as uuids. */
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The order of a page, as SQL sorts it. */
function pageOrder(sort: TaskSort): (a: TaskRow, b: TaskRow) => number {
  if (sort === 'dueAt') {
    // Soonest first, no due date last, then by id.
    const due = (row: TaskRow) => row.due_at?.getTime() ?? Number.POSITIVE_INFINITY;
    return (a, b) => due(a) - due(b) || byId(a, b);
  }
  const column = sortColumns[sort];
  // Newest first, then by id, descending.
  return (a, b) => b[column].getTime() - a[column].getTime() || byId(b, a);
}

export async function list(db: Queryable, caller: Caller, options: ListOptions): Promise<Page> {
  const { text, params } = listQuery(caller, options);
  const { rows } = await db.query<TaskRow & CallerRow>(text, params);
  // The rows come out in the page's order, the caller's row joined to them; sorted again rather
  // than rely on it (the join does not promise it), in JavaScript: at most limit + 1 rows.
  const found = (await ownRows(db, caller, rows))
    .filter((row) => row.id !== null)
    .sort(pageOrder(options.sort));
  const items = found.slice(0, options.limit).map(toTask);
  const lastItem = items.at(-1);
  return {
    items,
    last:
      found.length > options.limit && lastItem
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
  caller: Caller,
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
    ...callerParams(caller),
    id,
    expectedVersions ?? null,
    ...fields.map(([, value]) => value),
  ];
  const sets = fields.map(([column], i) => `${column} = $${i + 6}`);
  const { rows } = await db.query<TaskRow & CallerRow & { current_version: number | null }>(
    withCaller(
      `w AS (
        UPDATE tasks
        SET ${sets.join(', ')}, version = version + 1,
            updated_at = date_trunc('milliseconds', clock_timestamp())
        WHERE user_id = (SELECT user_id FROM caller) AND id = $4
          AND ($5::integer[] IS NULL OR version = ANY ($5))
        RETURNING ${columns})`,
      `SELECT ${callerColumns}, w.*, ${currentVersion} AS current_version
       FROM caller LEFT JOIN w ON true`,
    ),
    params,
  );
  const row = (await ownRows(db, caller, rows))[0]!;
  if (row.id !== null) return toTask(row);
  return expectedVersions !== undefined && row.current_version !== null ? 'stale' : undefined;
}

/**
 * Deletes the task; with `expectedVersions` (If-Match) only while it still has one of them.
 * Returns whether it was deleted, 'stale' when the version did not match, or undefined when there
 * is none.
 */
export async function remove(
  db: Queryable,
  caller: Caller,
  id: string,
  expectedVersions: readonly number[] | undefined,
): Promise<true | 'stale' | undefined> {
  const { rows } = await db.query<
    CallerRow & { id: string | null; current_version: number | null }
  >(deleteTask, [...callerParams(caller), id, expectedVersions ?? null]);
  const row = (await ownRows(db, caller, rows))[0]!;
  if (row.id !== null) return true;
  return expectedVersions !== undefined && row.current_version !== null ? 'stale' : undefined;
}

// The user's counter and the changes after a position, in ONE statement: one snapshot, so every
// change numbered up to `head` is visible in it (the ordering argument is in migration 0003, at
// next_change_seq). A user without changes has no counter row yet: head 0. Live tasks and
// tombstones share the counter; each branch reads at most `limit` rows of its index in order, and
// the merge keeps the first `limit`. (The rows come out in that order, the caller's row joined to
// them; `changes` sorts them again rather than rely on it.)
// $4 the position's counter value, $5 its id, $6 the limit, $7 whether to read tombstones.
export const selectChanges = `
  WITH ${callerCte}
  SELECT ${callerColumns}, COALESCE(c.change_seq, 0) AS head,
         COALESCE(c.purged_change_seq, 0) AS purged, e.*
  FROM caller
  LEFT JOIN task_change_counters c ON c.user_id = caller.user_id
  LEFT JOIN LATERAL (
    (SELECT t.change_seq AS seq, NULL::timestamptz AS deleted_at, ${columns}
     FROM tasks t
     WHERE t.user_id = caller.user_id AND (t.change_seq, t.id) > ($4::bigint, $5::uuid)
     ORDER BY t.change_seq, t.id LIMIT $6)
    UNION ALL
    (SELECT d.change_seq, d.deleted_at, d.task_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
     FROM task_tombstones d
     WHERE $7 AND d.user_id = caller.user_id
       AND (d.change_seq, d.task_id) > ($4::bigint, $5::uuid)
     ORDER BY d.change_seq, d.task_id LIMIT $6)
    ORDER BY seq, id LIMIT $6
  ) e ON true`;

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
  /** The caller's user: whose change order this is. */
  readonly userId: string;
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
  caller: Caller,
  options: { after: SyncPosition; withTombstones: boolean; limit: number },
): Promise<ChangeLog> {
  // A row without an entry (seq NULL) only carries head and purged; a tombstone has deleted_at.
  type ChangeRow = TaskRow &
    CallerRow & {
      head: string;
      purged: string;
      seq: string | null;
      deleted_at: Date | null;
    };
  const { rows } = await db.query<ChangeRow>(selectChanges, [
    ...callerParams(caller),
    options.after.seq,
    options.after.id ?? afterAllIds,
    options.limit + 1,
    options.withTombstones,
  ]);
  const first = (await ownRows(db, caller, rows))[0]!;
  const entries = rows
    .filter((row) => row.seq !== null)
    .sort((a, b) => Number(a.seq) - Number(b.seq) || byId(a, b))
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
  return {
    userId: first.caller_id,
    head: Number(first.head),
    purged: Number(first.purged),
    entries,
  };
}

/**
 * The statements behind get, create and sync, for the benchmark's same-statements baseline
 * (bench/baselines.ts), which runs exactly these without the HTTP stack. Lists: `listQuery`.
 */
export const statements = { selectTask, insertTask, insertTaskWithId, selectChanges } as const;
