import type { Fixture } from './database.ts';
import { benchTaskTitle, listLimit, type ScenarioName } from './scenarios.ts';

/**
 * What each baseline runs for each scenario's request, declared once. The node:http + pg server
 * (baseline-server.ts) executes these steps, and the pgbench scripts are generated from them
 * (pgbench.ts), so the pgbench row always runs exactly the baseline's statements.
 *
 * To add a baseline (issue 15's "same statements as the backend"), declare its steps per scenario
 * below and add it to `baselines`: the harness starts it, measures it, counts its statements in
 * PostgreSQL and runs pgbench on them.
 */

/** What the SQL of a request needs, from the HTTP request (server) or from a fixture (pgbench). */
export interface RequestValues {
  tokenHash: Buffer;
  taskId: string;
  limit: number;
  title: string;
  /** The session's user: pgbench knows it from the fixture, the server learns it from a step. */
  userId?: string;
}

export type Row = Record<string, unknown>;

export interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** One statement, so one database round trip (node-postgres sends one at a time). */
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
const answerPage = (rows: Row[], v: RequestValues): Answer => ({
  status: 200,
  body: { items: (rows as unknown as TaskRow[]).slice(0, v.limit).map(toTask), nextCursor: null },
});

const answerCreated = (rows: Row[]): Answer => {
  const task = toTask(rows[0] as unknown as TaskRow);
  return {
    status: 201,
    body: task,
    headers: { Location: `/api/v1/tasks/${task.id}`, ETag: `"${task.version}"` },
  };
};

// ---- the two-query baseline: the backend's SQL as of issue 15's start --------------------------
// (backend/src/auth/repository.ts and backend/src/tasks/repository.ts). Copied, not imported, so
// that it stays the same when the backend changes; the table's "same statements as backend"
// column says, from PostgreSQL's queryids, whether it still matches.

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

export const twoQuery: Baseline = {
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
    create: [
      sessionLookup,
      {
        sql: `
  INSERT INTO tasks (user_id, title, notes, completed, due_at)
  VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, false), $5)
  RETURNING ${columns}`,
        params: (v) => [v.userId, v.title, null, null, null],
        after: answerCreated,
      },
    ],
  },
};

/** Every baseline the harness runs, each as its own process and its own pgbench row. */
export const baselines: readonly Baseline[] = [twoQuery];

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

/** The values the benchmark's request for `fixture` carries, as pgbench must inline them. */
export const fixtureValues = (fixture: Fixture): RequestValues => ({
  tokenHash: fixture.tokenHash,
  taskId: fixture.taskId,
  limit: listLimit,
  title: benchTaskTitle,
  userId: fixture.userId,
});
