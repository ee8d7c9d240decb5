import { afterAll, beforeAll } from 'vitest';
import { startOwnPostgres } from '../../../backend/test/support/own-postgres.ts';
import { startBackend, type BackendProcess } from '../../../backend/test/support/processes.ts';
import { timeUntil } from '../../../backend/test/support/wait.ts';

/**
 * What the fault tests share on top of the testkit: a database and a backend per test file,
 * the backend's pool gauges, and the few API calls that set a test up.
 */

export type OwnPostgres = Awaited<ReturnType<typeof startOwnPostgres>>;

/** A value beforeAll sets, as the tests read it. */
function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is used before beforeAll started it`);
  return value;
}

/**
 * A PostgreSQL of the test file's own (the fault tests stop and start it), started before its
 * tests and removed after them.
 */
export function useOwnPostgres(): { readonly db: OwnPostgres } {
  let db: OwnPostgres | undefined;
  beforeAll(async () => {
    db = await startOwnPostgres();
  });
  afterAll(async () => {
    await db?.dispose();
  });
  return {
    get db() {
      return started(db, 'the PostgreSQL');
    },
  };
}

/**
 * The backend as `npm start` runs it, with `env`, on a PostgreSQL of the file's own; stopped
 * (SIGTERM, then SIGKILL after 5 s) after the file's tests.
 */
export function useBackendOnOwnPostgres(
  name: string,
  env: Record<string, string> = {},
): { readonly db: OwnPostgres; readonly backend: BackendProcess } {
  const postgres = useOwnPostgres();
  let backend: BackendProcess | undefined;
  beforeAll(async () => {
    backend = await startBackend(name, { ...env, DATABASE_URL: postgres.db.url });
  });
  afterAll(async () => {
    await backend?.stop(5000);
  });
  return {
    get db() {
      return postgres.db;
    },
    get backend() {
      return started(backend, `backend "${name}"`);
    },
  };
}

export interface PoolGauges {
  total: number;
  idle: number;
  waiting: number;
  max: number;
  /** Clients checked out of the pool right now: total - idle. */
  inUse: number;
}

/** Unlabelled samples from the backend's metrics port, by name; throws for a missing one. */
export async function scrapeMetrics<N extends string>(
  backend: BackendProcess,
  names: readonly N[],
): Promise<Record<N, number>> {
  const text = await (
    await fetch(backend.metricsUrl, { signal: AbortSignal.timeout(2000) })
  ).text();
  const values = {} as Record<N, number>;
  for (const name of names) {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!match) throw new Error(`${name} missing from ${backend.metricsUrl}`);
    values[name] = Number(match[1]);
  }
  return values;
}

/** The database pool gauges. */
export async function poolGauges(backend: BackendProcess): Promise<PoolGauges> {
  const m = await scrapeMetrics(backend, [
    'db_pool_total_connections',
    'db_pool_idle_connections',
    'db_pool_waiting_clients',
    'db_pool_max_connections',
  ]);
  return {
    total: m.db_pool_total_connections,
    idle: m.db_pool_idle_connections,
    waiting: m.db_pool_waiting_clients,
    max: m.db_pool_max_connections,
    inUse: m.db_pool_total_connections - m.db_pool_idle_connections,
  };
}

/** Milliseconds until nothing is checked out of the pool or waiting for it (10 s at most). */
export function poolSettles(backend: BackendProcess): Promise<number> {
  return timeUntil(
    'pool settles',
    async () => {
      const pool = await poolGauges(backend);
      return pool.inUse === 0 && pool.waiting === 0;
    },
    { timeoutMs: 10_000 },
  );
}

/** Registers a user over HTTP; returns its bearer token. */
export async function registerUser(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      email: `resilience-${Math.random().toString(36).slice(2)}@example.com`,
      password: 'a long enough password',
    }),
  });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 201 || !body.token)
    throw new Error(`register: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** Creates a task over HTTP; returns its id. */
export async function createTask(baseUrl: string, token: string, title: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ title }),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id)
    throw new Error(`create task: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}
