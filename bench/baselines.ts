import { createHash } from 'node:crypto';
import { callerParams } from '../backend/src/auth/caller.ts';
import { statements as idempotencyStatements } from '../backend/src/idempotency/repository.ts';
import { listQuery, statements as taskStatements } from '../backend/src/tasks/repository.ts';
import type { Fixture } from './database.ts';
import {
  benchTaskTitle,
  coldSyncLimit,
  listLimit,
  syncLimit,
  type ScenarioName,
} from './scenarios.ts';

/**
 * What each baseline runs for each scenario's request, declared once. The node:http + pg server
 * (baseline-server.ts) executes these steps, and the pgbench scripts are generated from them
 * (pgbench.ts), so the pgbench row always runs exactly the baseline's statements.
 *
 * Two are declared: two-query (the backend's SQL at issue 15's start, copied) and same-statements
 * (the backend's SQL now, imported). To add one, declare its steps per scenario below and add it
 * to `baselines`: the harness starts it, measures it, counts its statements in PostgreSQL and
 * runs pgbench on them.
 */

/**
 * A value pgbench makes afresh for every transaction, where each request needs its own (a new
 * task id, a new idempotency key): pgbench.ts turns it into `\set` random numbers. The server
 * always has the request's own value instead.
 */
export class PerTransaction {
  constructor(readonly kind: 'uuid' | 'text') {}
}

/** What the SQL of a request needs, from the HTTP request (server) or from a fixture (pgbench). */
export interface RequestValues {
  tokenHash: Buffer;
  taskId: string;
  limit: number;
  title: string;
  /** The session's user: pgbench knows it from the fixture, the server learns it from a step. */
  userId?: string;
  /** Where a sync starts (its token, decoded); absent for a cold start. */
  since?: { seq: number; id?: string | undefined; user?: string };
  /** The client's id for a new task (create-with-id). */
  newTaskId?: string | PerTransaction;
  idempotencyKey?: string | PerTransaction;
  /** SHA-256 of the request, as the backend fingerprints it (create-with-id, idempotency). */
  requestHash?: Buffer;
  /** The task a step created, for the steps after it (stored with the idempotency key). */
  task?: ApiTask;
}

export type Row = Record<string, unknown>;

export interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * One statement, so one database round trip (node-postgres sends one at a time). `BEGIN` opens a
 * transaction: the server runs the steps up to `COMMIT` on one client.
 */
export interface Step {
  /** Parameterised SQL ($1, $2…), as node-postgres sends it. */
  sql: string;
  params: (v: RequestValues) => unknown[];
  /**
   * What the rows mean: the answer that ends the request, or values the next steps need (the
   * session's user). The last step must answer.
   */
  after: (rows: Row[], v: RequestValues) => Answer | Partial<RequestValues>;
}

export interface Baseline {
  /** Names its targets in the results: `baseline:<name>`, `pgbench:<name>`. */
  name: string;
  /** What the printed table calls it. */
  label: string;
  /** Steps per scenario. Readiness runs no SQL per request (cached for a second): no steps. */
  plans: Partial<Record<ScenarioName, readonly Step[]>>;
  /**
   * Sends named prepared statements, as the backend does by default (DATABASE_PREPARED_STATEMENTS),
   * so that PostgreSQL plans each once per connection; pgbench then runs with `-M prepared`.
   * Without it, statements are unnamed: parsed and planned on every request.
   * @default false
   */
  prepared?: boolean;
}

export const isAnswer = (x: Answer | Partial<RequestValues>): x is Answer => 'status' in x;

// ---- answers, the same JSON as the backend's ------------------------------------------------

interface TaskRow {
  id: string;
  title: string;
  notes: string;
  completed: boolean;
  /** Selected by the statements of issue 14 on; the older ones derive it (see toTask). */
  completed_at?: Date | null;
  due_at: Date | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export type ApiTask = ReturnType<typeof toTask>;

// A statement from before issue 14 selects no completed_at: the answer derives it as the backend
// does for tasks completed before migration 0003 (their last change), so the JSON has the same
// shape without changing the statement.
const toTask = (row: TaskRow) => ({
  id: row.id,
  title: row.title,
  notes: row.notes,
  completed: row.completed,
  completedAt: (row.completed_at ?? (row.completed ? row.updated_at : null))?.toISOString() ?? null,
  dueAt: row.due_at?.toISOString() ?? null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  version: row.version,
});

const problem = (status: number): Answer => ({ status, body: { status } });

// The opaque strings of the API as of a3e07cd (backend/src/tasks/cursors.ts): base64url JSON.
const encodeOpaque = (value: unknown): string =>
  Buffer.from(JSON.stringify(value)).toString('base64url');

/** A sync token's position, or undefined when it is not a well-formed token of format 1. */
export function decodeSyncToken(
  token: string,
): { user: string; seq: number; id?: string } | undefined {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    if (t['v'] !== 1 || typeof t['u'] !== 'string' || !Number.isSafeInteger(t['s']))
      return undefined;
    const id = typeof t['i'] === 'string' ? t['i'] : undefined;
    return { user: t['u'], seq: t['s'] as number, ...(id !== undefined && { id }) };
  } catch {
    return undefined;
  }
}

/**
 * The request's fingerprint as the backend takes it (idempotency/service.ts, as of a3e07cd): the
 * SHA-256 of its canonical JSON, with a client's id lower-cased.
 */
export function requestHash(input: Record<string, unknown>): Buffer {
  const request = {
    ...input,
    ...(typeof input['id'] === 'string' && { id: input['id'].toLowerCase() }),
  };
  return createHash('sha256')
    .update(JSON.stringify(request, Object.keys(request).sort()))
    .digest();
}

const answerTask = (rows: Row[]): Answer => {
  const row = rows[0] as TaskRow | undefined;
  if (!row) return problem(404);
  const task = toTask(row);
  return {
    status: 200,
    body: task,
    headers: { ETag: `"${task.version}"`, 'Cache-Control': 'private, no-cache' },
  };
};

/** One row past the limit tells whether there is a next page, as the backend asks for. */
const answerPage = (rows: Row[], v: RequestValues): Answer => {
  const items = (rows as unknown as TaskRow[]).slice(0, v.limit).map(toTask);
  const last = items.at(-1);
  const more = rows.length > v.limit && last;
  return {
    status: 200,
    body: {
      items,
      nextCursor: more ? encodeOpaque({ s: 'createdAt', t: last.createdAt, i: last.id }) : null,
    },
  };
};

const answerCreated = (task: ApiTask): Answer => ({
  status: 201,
  body: task,
  headers: { Location: `/api/v1/tasks/${task.id}`, ETag: `"${task.version}"` },
});

/** The first row's task, kept for the steps after it; a 409 when there is none (see below). */
const keepTask = (rows: Row[]): Answer | Partial<RequestValues> =>
  rows[0] ? { task: toTask(rows[0] as unknown as TaskRow) } : problem(409);

/**
 * The sync's answer, as tasks/service.ts (a3e07cd) makes it from the change log: 410 for a token
 * past the head or before the purge horizon, then the page in counter order and where the next
 * sync starts.
 */
const answerChanges = (rows: Row[], v: RequestValues): Answer => {
  type ChangeRow = TaskRow & {
    head: string;
    purged: string;
    seq: string | null;
    deleted_at: Date | null;
  };
  const all = rows as unknown as ChangeRow[];
  const first = all[0];
  if (!first) return problem(401);
  // Another user's token (the backend's decoder refuses it the same way).
  if (v.since?.user !== undefined && v.since.user !== v.userId) return problem(400);
  const head = Number(first.head);
  if (v.since && (v.since.seq > head || v.since.seq < Number(first.purged))) return problem(410);
  const entries = all
    .filter((row) => row.seq !== null)
    .sort((a, b) => Number(a.seq) - Number(b.seq) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = entries.slice(0, v.limit);
  const hasMore = entries.length > v.limit;
  const last = page.at(-1);
  const next = hasMore && last ? { s: Number(last.seq), i: last.id } : { s: head };
  return {
    status: 200,
    body: {
      changes: page.filter((e) => !e.deleted_at).map(toTask),
      deleted: page.flatMap((e) =>
        e.deleted_at ? [{ id: e.id, deletedAt: e.deleted_at.toISOString() }] : [],
      ),
      next: encodeOpaque({ v: 1, u: v.userId, ...next }),
      hasMore,
    },
  };
};

// ---- the two-query baseline -------------------------------------------------------------------
// Unnamed statements, as the backend sent them at issue 15's start. Copied, not imported, so that
// it stays the same when the backend changes; the table's "same statements as backend" column
// says, from the statements' text (report.ts, statementKey), whether it still matches.
//
// get-by-id, list, create: the backend's SQL as of issue 15's start (backend/src/auth/repository.ts
// and backend/src/tasks/repository.ts then): the session lookup, then the task query.

const columns = 'id, title, notes, completed, due_at, created_at, updated_at, version';

const sessionLookup: Step = {
  sql: `
  SELECT u.id, u.email, u.created_at
  FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = $1 AND s.expires_at > now()`,
  params: (v) => [v.tokenHash],
  after: (rows) => {
    const id = rows[0]?.['id'];
    return typeof id === 'string' ? { userId: id } : problem(401);
  },
};

// sync, sync-cold, create-idempotent, create-with-id: scenarios added after issue 14 landed, so
// the backend's statements on main at a3e07cd (auth/repository.ts, tasks/repository.ts,
// idempotency/repository.ts, db.ts's withTransaction): its session lookup of then, which slides
// sessions, then the work, with the backend's default lifetimes (AUTH_TOKEN_TTL_SECONDS,
// AUTH_SESSION_MAX_LIFETIME_SECONDS).

const tokenTtlSeconds = 30 * 24 * 3600;
const sessionMaxSeconds = 365 * 24 * 3600;

const slidingSessionLookup: Step = {
  sql: `
  WITH found AS (
    SELECT u.id, u.email, u.created_at
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = $1 AND s.expires_at > now()
      AND s.created_at > now() - make_interval(secs => $3)
  ), touched AS (
    UPDATE sessions s
    SET last_used_at = now(),
        expires_at = CASE WHEN s.expires_at < now() + make_interval(secs => $2) / 3
                     THEN LEAST(now() + make_interval(secs => $2),
                                s.created_at + make_interval(secs => $3))
                     ELSE s.expires_at END
    WHERE s.token_hash = $1 AND EXISTS (SELECT 1 FROM found)
      AND (COALESCE(s.last_used_at, s.created_at) < now() - interval '1 hour'
           OR (s.expires_at < now() + make_interval(secs => $2) / 3
               AND s.expires_at < s.created_at + make_interval(secs => $3)))
  )
  SELECT id, email, created_at FROM found`,
  params: (v) => [v.tokenHash, tokenTtlSeconds, sessionMaxSeconds],
  after: sessionLookup.after,
};

const completedAt = 'COALESCE(completed_at, CASE WHEN completed THEN updated_at END)';
const columnsA3e07cd = `id, title, notes, completed, ${completedAt} AS completed_at, due_at, created_at,
  updated_at, version`;
const newRow = `
  SELECT COALESCE($6::uuid, gen_random_uuid()), $1, $2, COALESCE($3, ''), COALESCE($4, false),
         $5, now.t, now.t, $7
  FROM (SELECT date_trunc('milliseconds', clock_timestamp()) AS t) now`;
const insertColumns = `id, user_id, title, notes, completed, due_at, created_at, updated_at,
  create_fingerprint`;
const afterAllIds = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

const syncSteps: readonly Step[] = [
  slidingSessionLookup,
  {
    sql: `
  SELECT COALESCE(c.change_seq, 0) AS head, COALESCE(c.purged_change_seq, 0) AS purged, e.*
  FROM users u
  LEFT JOIN task_change_counters c ON c.user_id = u.id
  LEFT JOIN LATERAL (
    (SELECT t.change_seq AS seq, NULL::timestamptz AS deleted_at, ${columnsA3e07cd}
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
  WHERE u.id = $1`,
    params: (v) => [
      v.userId,
      v.since?.seq ?? -1,
      v.since?.id ?? afterAllIds,
      v.limit + 1,
      v.since !== undefined,
    ],
    after: answerChanges,
  },
];

/** A new task without a client id, as every create inserts it. */
const insertTaskParams = (v: RequestValues) => [v.userId, v.title, null, null, null, null, null];
const insertTask = `INSERT INTO tasks (${insertColumns}) ${newRow} RETURNING ${columnsA3e07cd}`;

const begin: Step = { sql: 'BEGIN', params: () => [], after: () => ({}) };

const twoQuery: Baseline = {
  name: 'two-query',
  label: 'node:http + pg, two-query',
  plans: {
    'get-by-id': [
      sessionLookup,
      {
        sql: `SELECT ${columns} FROM tasks WHERE id = $1 AND user_id = $2`,
        params: (v) => [v.taskId, v.userId],
        after: answerTask,
      },
    ],
    list: [
      sessionLookup,
      {
        sql: `SELECT ${columns} FROM tasks WHERE user_id = $1
     ORDER BY created_at DESC, id DESC LIMIT $2`,
        params: (v) => [v.userId, v.limit + 1],
        after: answerPage,
      },
    ],
    sync: syncSteps,
    'sync-cold': syncSteps,
    create: [
      sessionLookup,
      {
        sql: `
  INSERT INTO tasks (user_id, title, notes, completed, due_at)
  VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, false), $5)
  RETURNING ${columns}`,
        params: (v) => [v.userId, v.title, null, null, null],
        after: (rows) => answerCreated(toTask(rows[0] as unknown as TaskRow)),
      },
    ],
    // A transaction: claim the key, insert, store the result, commit (idempotency/service.ts).
    // A key claimed before (never, with a fresh key per request) would be a replay or a 422 in
    // the backend; here it is a 409, which the harness counts as a failure.
    'create-idempotent': [
      slidingSessionLookup,
      begin,
      {
        sql: `
  INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
  ON CONFLICT (user_id, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, status = NULL, location = NULL, body = NULL, created_at = now()
    WHERE idempotency_keys.created_at < now() - interval '24 hours'
  RETURNING 1`,
        params: (v) => [v.userId, v.idempotencyKey, v.requestHash],
        after: (rows) => (rows.length === 1 ? {} : problem(409)),
      },
      { sql: insertTask, params: insertTaskParams, after: keepTask },
      {
        sql: `
  UPDATE idempotency_keys SET status = 201, body = $3
  WHERE user_id = $1 AND key = $2`,
        params: (v) => [v.userId, v.idempotencyKey, JSON.stringify(v.task)],
        after: () => ({}),
      },
      { sql: 'COMMIT', params: () => [], after: (_, v) => answerCreated(v.task!) },
    ],
    // One statement: the lookup of the client's id and the insert (tasks/repository.ts). An id
    // that exists (never, with a fresh id per request) would be a replay or a 409 in the backend,
    // after more statements; here it is a 409, which the harness counts as a failure.
    'create-with-id': [
      slidingSessionLookup,
      {
        sql: `
  WITH existing AS (
    SELECT ${columnsA3e07cd}, create_fingerprint FROM tasks WHERE user_id = $1 AND id = $6 FOR KEY SHARE
  ), inserted AS (
    INSERT INTO tasks (${insertColumns}) ${newRow} WHERE NOT EXISTS (SELECT 1 FROM existing)
    ON CONFLICT (user_id, id) DO NOTHING
    RETURNING ${columnsA3e07cd}, create_fingerprint
  )
  SELECT *, false AS existed FROM inserted
  UNION ALL
  SELECT *, true FROM existing`,
        params: (v) => [v.userId, v.title, null, null, null, v.newTaskId, v.requestHash],
        after: (rows) =>
          rows[0] && rows[0]['existed'] === false
            ? answerCreated(toTask(rows[0] as unknown as TaskRow))
            : problem(409),
      },
    ],
  },
};

// ---- the same-statements baseline ------------------------------------------------------------
// The backend's own statements, imported, not copied: each authenticated request is one statement
// that checks the session and does the work (auth/caller.ts), and a first idempotent create is
// the transaction of idempotency/service.ts. Only the HTTP stack differs, so this row measures what
// Express, validation, logging, metrics and headers cost on top of the same database work (goal:
// the backend at 0.80x or better). A session the statement finds due to slide (at most once an
// hour) is not slid here: the backend's next request does it.

/** The caller's three parameters ($1-$3), with the backend's default lifetimes. */
const callerOf = (v: RequestValues) =>
  callerParams({
    tokenHash: v.tokenHash,
    ttlSeconds: tokenTtlSeconds,
    maxSeconds: sessionMaxSeconds,
  });

type CallerRows = (Row & { caller_id: string })[];

/** No row at all: the token is not valid (ownRows). Otherwise `then`, knowing the caller's user. */
const asCaller =
  (then: (rows: Row[], v: RequestValues) => Answer | Partial<RequestValues>) =>
  (rows: Row[], v: RequestValues): Answer | Partial<RequestValues> => {
    const first = (rows as CallerRows)[0];
    if (!first) return problem(401);
    return then(rows, Object.assign(v, { userId: first.caller_id }));
  };

// A caller's row with no task joined to it: not found (or, for a create with an id, not created).
const withTask = (rows: Row[]) => rows.filter((row) => row['id'] !== null);

const sameInsertParams = (v: RequestValues, withId: boolean) => [
  ...callerOf(v),
  v.title,
  null,
  null,
  null,
  withId ? v.newTaskId : null,
  withId ? v.requestHash : null,
];

// The first page, newest first: the only variable part of the text is the filters, and there are none.
const listText = listQuery(
  { tokenHash: Buffer.alloc(0), ttlSeconds: tokenTtlSeconds, maxSeconds: sessionMaxSeconds },
  { sort: 'createdAt', limit: listLimit },
).text;

// tasks/service.ts: a cold sync starts before every counter value and reads no tombstones.
const sameSync: Step = {
  sql: taskStatements.selectChanges,
  params: (v) => [
    ...callerOf(v),
    v.since?.seq ?? -1,
    v.since?.id ?? afterAllIds,
    v.limit + 1,
    v.since !== undefined,
  ],
  after: asCaller(answerChanges),
};

export const sameStatements: Baseline = {
  name: 'same-statements',
  label: "node:http + pg, the backend's statements",
  prepared: true,
  plans: {
    'get-by-id': [
      {
        sql: taskStatements.selectTask,
        params: (v) => [...callerOf(v), v.taskId],
        after: asCaller((rows) => answerTask(withTask(rows))),
      },
    ],
    list: [
      {
        sql: listText,
        params: (v) => [...callerOf(v), v.limit + 1],
        // The backend sorts the page again rather than rely on the join's order: so does this.
        after: asCaller((rows, v) =>
          answerPage(
            withTask(rows).sort(
              (a, b) =>
                (b['created_at'] as Date).getTime() - (a['created_at'] as Date).getTime() ||
                (a['id']! < b['id']! ? 1 : a['id']! > b['id']! ? -1 : 0),
            ),
            v,
          ),
        ),
      },
    ],
    sync: [sameSync],
    'sync-cold': [sameSync],
    create: [
      {
        sql: taskStatements.insertTask,
        params: (v) => sameInsertParams(v, false),
        after: asCaller((rows) => answerCreated(toTask(rows[0] as unknown as TaskRow))),
      },
    ],
    'create-idempotent': [
      begin,
      {
        sql: idempotencyStatements.claimKey,
        params: (v) => [...callerOf(v), v.idempotencyKey, v.requestHash],
        after: asCaller((rows) => (rows[0]!['claimed'] === 1 ? {} : problem(409))),
      },
      {
        sql: taskStatements.insertTask,
        params: (v) => sameInsertParams(v, false),
        after: asCaller((rows) => keepTask(withTask(rows))),
      },
      {
        sql: idempotencyStatements.storeBody,
        params: (v) => [v.userId, v.idempotencyKey, JSON.stringify(v.task)],
        after: () => ({}),
      },
      { sql: 'COMMIT', params: () => [], after: (_, v) => answerCreated(v.task!) },
    ],
    'create-with-id': [
      {
        sql: taskStatements.insertTaskWithId,
        params: (v) => sameInsertParams(v, true),
        after: asCaller((rows) =>
          rows[0]!['existed'] === false
            ? answerCreated(toTask(rows[0] as unknown as TaskRow))
            : problem(409),
        ),
      },
    ],
  },
};

/** Every baseline the harness runs, each as its own process and its own pgbench row. */
export const baselines: readonly Baseline[] = [twoQuery, sameStatements];

/** The scenarios a baseline answers: those it has steps for, and readiness. */
export const scenariosOf = (baseline: Baseline): ScenarioName[] => [
  ...(Object.keys(baseline.plans) as ScenarioName[]),
  'health',
];

export function baselineNamed(name: string): Baseline {
  const baseline = baselines.find((b) => b.name === name);
  if (!baseline) {
    throw new Error(`no baseline "${name}"; there are: ${baselines.map((b) => b.name).join(', ')}`);
  }
  return baseline;
}

const limits: Partial<Record<ScenarioName, number>> = {
  list: listLimit,
  sync: syncLimit,
  'sync-cold': coldSyncLimit,
};

/** A task as a create answers it, for what pgbench stores with an idempotency key. */
const storedTask = (fixture: Fixture): ApiTask => ({
  id: fixture.taskId,
  title: benchTaskTitle,
  notes: '',
  completed: false,
  completedAt: null,
  dueAt: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  version: 1,
});

/**
 * The values the benchmark's request of `scenario` for `fixture` carries, as pgbench must inline
 * them: a sync starts at the user's change counter as it was when the script was written
 * (`heads`), and each create gets a fresh id or key per transaction.
 */
export function fixtureValues(
  fixture: Fixture,
  scenario: ScenarioName,
  heads: ReadonlyMap<string, number> = new Map(),
): RequestValues {
  return {
    tokenHash: fixture.tokenHash,
    taskId: fixture.taskId,
    limit: limits[scenario] ?? listLimit,
    title: benchTaskTitle,
    userId: fixture.userId,
    ...(scenario === 'sync' && { since: { seq: heads.get(fixture.userId) ?? 0 } }),
    newTaskId: new PerTransaction('uuid'),
    idempotencyKey: new PerTransaction('text'),
    requestHash: requestHash({ title: benchTaskTitle }),
    task: storedTask(fixture),
  };
}
