import { randomUUID } from 'node:crypto';
import type { Fixture } from './database.ts';

/**
 * The requests the benchmark sends, the same to the backend and to every baseline, and the answer
 * each must give.
 */

export const listLimit = 20;
/** A delta sync page: what a client polling for changes asks for. */
export const syncLimit = 100;
/** The first page of a cold start (the API's largest). */
export const coldSyncLimit = 500;
export const benchTaskTitle = 'Benchmark task';

export type ScenarioName =
  | 'get-by-id'
  | 'list'
  | 'sync'
  | 'sync-cold'
  | 'create'
  | 'create-idempotent'
  | 'create-with-id'
  | 'health';

/**
 * What one target (backend or baseline) remembers between requests, kept for the whole run: the
 * sync token it last gave each user, as a client keeps its own. Tokens are opaque: each target
 * is only ever sent its own.
 */
export interface TargetState {
  readonly syncTokens: Map<string, string>;
  /** Sync answers received, and the entries (changes and deletions) they carried. */
  syncAnswers: number;
  syncEntries: number;
}

export const newTargetState = (): TargetState => ({
  syncTokens: new Map(),
  syncAnswers: 0,
  syncEntries: 0,
});

export interface BenchRequest {
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface Scenario {
  name: ScenarioName;
  label: string;
  method: 'GET' | 'POST';
  /** The request for one fixture's user: made afresh each time (new ids, the latest token). */
  request: (f: Fixture, state: TargetState) => BenchRequest;
  auth: boolean;
  expect: number;
  /** Learns from a successful answer: the sync keeps the `next` it was given. */
  onAnswer?: (f: Fixture, body: unknown, state: TargetState) => void;
  /**
   * Brings a target's state to the present before each measurement: the sync pages each user,
   * 500 at a time, from its last token (a cold sync the first time) until `hasMore` is false, so
   * that measurements start with clients up to date, whatever was written since.
   */
  prepare?: (baseUrl: string, fixtures: readonly Fixture[], state: TargetState) => Promise<void>;
  /** Tasks change in the background (bench/writer.ts) while it runs. */
  writer?: boolean;
}

const json = (value: unknown) => JSON.stringify(value);

const changesPath = (limit: number, since: string | undefined) =>
  `/api/v1/tasks/changes?${since === undefined ? '' : `since=${encodeURIComponent(since)}&`}limit=${limit}`;

interface ChangesBody {
  changes: unknown[];
  deleted: unknown[];
  next: string;
  hasMore: boolean;
}

const isChanges = (body: unknown): body is ChangesBody =>
  typeof (body as ChangesBody | null)?.next === 'string';

/** Each user's sync from its last token (none: a cold sync) to the present; keeps the last `next`. */
async function catchUp(
  baseUrl: string,
  fixtures: readonly Fixture[],
  state: TargetState,
): Promise<void> {
  for (const fixture of fixtures) {
    let since = state.syncTokens.get(fixture.userId);
    for (let page = 0; ; page++) {
      if (page > 1000) throw new Error(`${baseUrl}: the sync of one user never ends`);
      const res = await fetch(`${baseUrl}${changesPath(coldSyncLimit, since)}`, {
        headers: { authorization: `Bearer ${fixture.token}` },
      });
      const body: unknown = await res.json();
      if (res.status !== 200 || !isChanges(body)) {
        throw new Error(`${baseUrl}: catching up answered ${res.status} ${json(body)}`);
      }
      since = body.next;
      if (!body.hasMore) break;
    }
    state.syncTokens.set(fixture.userId, since);
  }
}

export const scenarios: readonly Scenario[] = [
  {
    name: 'get-by-id',
    label: 'GET /api/v1/tasks/:id',
    method: 'GET',
    request: (f) => ({ path: `/api/v1/tasks/${f.taskId}` }),
    auth: true,
    expect: 200,
  },
  {
    name: 'list',
    label: `GET /api/v1/tasks?limit=${listLimit}`,
    method: 'GET',
    request: () => ({ path: `/api/v1/tasks?limit=${listLimit}` }),
    auth: true,
    expect: 200,
  },
  {
    name: 'sync',
    label: `GET /api/v1/tasks/changes?since=…&limit=${syncLimit}`,
    method: 'GET',
    request: (f, state) => {
      const since = state.syncTokens.get(f.userId);
      if (since === undefined) throw new Error(`no sync token for ${f.userId}: not prepared`);
      return { path: changesPath(syncLimit, since) };
    },
    onAnswer: (f, body, state) => {
      if (!isChanges(body)) return;
      state.syncTokens.set(f.userId, body.next);
      state.syncAnswers += 1;
      state.syncEntries += body.changes.length + body.deleted.length;
    },
    prepare: catchUp,
    writer: true,
    auth: true,
    expect: 200,
  },
  {
    name: 'sync-cold',
    label: `GET /api/v1/tasks/changes?limit=${coldSyncLimit}`,
    method: 'GET',
    request: () => ({ path: changesPath(coldSyncLimit, undefined) }),
    auth: true,
    expect: 200,
  },
  {
    name: 'create',
    label: 'POST /api/v1/tasks',
    method: 'POST',
    request: () => ({ path: '/api/v1/tasks', body: json({ title: benchTaskTitle }) }),
    auth: true,
    expect: 201,
  },
  {
    name: 'create-idempotent',
    label: 'POST /api/v1/tasks, Idempotency-Key',
    method: 'POST',
    request: () => ({
      path: '/api/v1/tasks',
      headers: { 'idempotency-key': randomUUID() },
      body: json({ title: benchTaskTitle }),
    }),
    auth: true,
    expect: 201,
  },
  {
    name: 'create-with-id',
    label: 'POST /api/v1/tasks {id}',
    method: 'POST',
    request: () => ({
      path: '/api/v1/tasks',
      body: json({ id: randomUUID(), title: benchTaskTitle }),
    }),
    auth: true,
    expect: 201,
  },
  {
    name: 'health',
    label: 'GET /api/health/ready',
    method: 'GET',
    request: () => ({ path: '/api/health/ready' }),
    auth: false,
    expect: 200,
  },
];

/** The scenarios `--only` names, in their usual order; exits 2 when it names an unknown one. */
export function selectScenarios(names: readonly string[]): Scenario[] {
  const unknown = names.filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0 || names.length === 0) {
    console.error(
      `--only: unknown ${unknown.join(', ') || '(none given)'}; there are: ${scenarios.map((s) => s.name).join(', ')}`,
    );
    process.exit(2);
  }
  return scenarios.filter((s) => names.includes(s.name));
}

/** The full request for a fixture: method, path, body and headers (the bearer token, JSON). */
export function requestFor(
  scenario: Scenario,
  fixture: Fixture,
  state: TargetState,
): { method: string; path: string; headers: Record<string, string>; body?: string } {
  const { path, headers, body } = scenario.request(fixture, state);
  const all: Record<string, string> = { ...headers };
  if (scenario.auth) all['authorization'] = `Bearer ${fixture.token}`;
  if (body !== undefined) all['content-type'] = 'application/json';
  return { method: scenario.method, path, headers: all, ...(body !== undefined && { body }) };
}

/**
 * The shape of a JSON value: object keys and value types all the way down, arrays by their
 * first element. Two targets answering the same request must agree on it.
 */
export function shapeOf(value: unknown): string {
  if (Array.isArray(value)) return `[${value.length > 0 ? shapeOf(value[0]) : ''}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a.localeCompare(b),
    );
    return `{${entries.map(([key, v]) => `${key}:${shapeOf(v)}`).join(',')}}`;
  }
  return value === null ? 'null' : typeof value;
}

/**
 * One request per scenario to every target measured under it: the right status, and the same
 * JSON shape from all of them. A scenario with a background writer is checked after `touch`
 * changed and deleted a task of the user, so that its answer has both kinds of entries.
 */
export async function checkScenarios(
  targets: readonly {
    server: { name: string; baseUrl: string };
    scenarios?: readonly ScenarioName[];
  }[],
  active: readonly Scenario[],
  fixture: Fixture,
  touch: (fixture: Fixture) => Promise<void>,
): Promise<void> {
  for (const scenario of active) {
    const shapes = new Map<string, string>();
    for (const { server } of targets.filter(
      (t) => !t.scenarios || t.scenarios.includes(scenario.name),
    )) {
      const state = newTargetState();
      await scenario.prepare?.(server.baseUrl, [fixture], state);
      if (scenario.writer) await touch(fixture);
      const { path, ...init } = requestFor(scenario, fixture, state);
      const res = await fetch(`${server.baseUrl}${path}`, init);
      const body: unknown = await res.json();
      if (res.status !== scenario.expect) {
        throw new Error(
          `${server.name} ${scenario.label}: expected ${scenario.expect}, got ${res.status} ${json(body)}`,
        );
      }
      shapes.set(server.name, shapeOf(body));
    }
    if (new Set(shapes.values()).size > 1) {
      const each = [...shapes].map(([name, shape]) => `${name}: ${shape}`);
      throw new Error(`${scenario.label}: the targets answer differently:\n  ${each.join('\n  ')}`);
    }
  }
}
