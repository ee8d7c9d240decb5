import autocannon from 'autocannon';
import type { ServerProcess } from '../backend/test/support/processes.ts';
import { percentile } from '../backend/test/support/stats.ts';
import type { Fixture, StatementCounter, StatementCounts } from './database.ts';
import { headersFor, type Scenario, type ScenarioName } from './scenarios.ts';

/** One measurement of one target under one scenario. */
export interface Measurement {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  failures: number;
  /** CPU time of the server process per request, in microseconds (HTTP targets only). */
  cpuUsPerRequest?: number;
  /** Resident memory of the server process at the end of the measurement, in MiB. */
  rssMiB?: number;
  /** Bytes the server wrote to stdout (its request log) per request. */
  logBytesPerRequest?: number;
  /** Requests sent, answered or not (the last ones may be cut off at the deadline). */
  sent?: number;
  /**
   * Statements PostgreSQL executed per request for this target (pg_stat_statements calls of its
   * role, BEGIN and COMMIT included): with node-postgres, database round trips per request.
   */
  dbStatementsPerRequest?: number;
  /** The same per statement, by pg_stat_statements' queryid. */
  dbStatements?: Record<string, { query: string; perRequest: number }>;
}

/** Statement counts of a measurement, per request. */
export function statementsPerRequest(
  counts: StatementCounts,
  requests: number,
): Pick<Measurement, 'dbStatementsPerRequest' | 'dbStatements'> {
  const per = (calls: number) => calls / Math.max(1, requests);
  const entries = [...counts].map(
    ([id, { query, calls }]) => [id, { query, perRequest: per(calls) }] as const,
  );
  return {
    dbStatementsPerRequest: per([...counts.values()].reduce((sum, { calls }) => sum + calls, 0)),
    dbStatements: Object.fromEntries(entries),
  };
}

/**
 * autocannon against one server for `seconds`, rotating over the fixtures (users, their tokens
 * and tasks), with the server's CPU time per request and its memory at the end.
 */
export async function loadHttp(
  server: ServerProcess,
  scenario: Scenario,
  fixtures: readonly Fixture[],
  options: { seconds: number; connections: number },
): Promise<Measurement> {
  let next = 0;
  // autocannon's own percentiles are whole milliseconds; sub-millisecond latencies need the raw ones.
  const latencies: number[] = [];
  const instance = autocannon({
    url: server.baseUrl,
    connections: options.connections,
    duration: options.seconds,
    requests: [
      {
        method: scenario.method,
        ...(scenario.body === undefined ? {} : { body: scenario.body }),
        setupRequest: (request) => {
          const fixture = fixtures[next++ % fixtures.length]!;
          return {
            ...request,
            path: scenario.path(fixture),
            headers: headersFor(scenario, fixture),
          };
        },
      },
    ],
  });
  instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  const before = { cpuMs: server.cpuMs(), logBytes: server.stdoutBytes() };
  const result = await instance;
  const cpuMs = server.cpuMs() - before.cpuMs;
  const perRequest = (total: number) => total / Math.max(1, latencies.length);
  return {
    rps: latencies.length / result.duration,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    requests: latencies.length,
    failures: result.non2xx + result.errors + result.timeouts,
    cpuUsPerRequest: perRequest(cpuMs * 1000),
    rssMiB: server.memory().rssMiB,
    logBytesPerRequest: perRequest(server.stdoutBytes() - before.logBytes),
    sent: result.requests.sent,
  };
}

/** A server measured under some or all scenarios. */
export interface HttpTarget {
  /** Its key in the results: backend, baseline:two-query, backend-metrics-off… */
  key: string;
  /** What the printed table calls it. */
  label: string;
  server: ServerProcess;
  /** The scenarios it is measured under (all when absent). */
  scenarios?: readonly ScenarioName[];
  /** A variant of the backend, measured for a figure of its own rather than a table row. */
  variant?: boolean;
  /** Counts its statements in PostgreSQL (its own role). */
  statements?: StatementCounter;
}

/** Measurements by scenario name, then by target key. */
export type Round = Record<string, Record<string, Measurement>>;

/**
 * `rounds` rounds of every scenario on every target (warm-up, then measurement), each followed
 * by the database-only measurement (pgbench) when there is one for the scenario.
 */
export async function measureRounds(options: {
  rounds: number;
  warmup: number;
  duration: number;
  connections: number;
  scenarios: readonly Scenario[];
  fixtures: readonly Fixture[];
  targets: readonly HttpTarget[];
  /** Measurements of the database alone (pgbench), by target key. */
  database?: (scenario: Scenario) => Promise<[key: string, Measurement][]>;
  onMeasurement: (round: number, scenario: Scenario, key: string, m: Measurement) => void;
}): Promise<Round[]> {
  const rounds: Round[] = [];
  for (let r = 0; r < options.rounds; r++) {
    const round: Round = {};
    for (const scenario of options.scenarios) {
      const results: Record<string, Measurement> = {};
      const targets = options.targets.filter(
        (t) => !t.scenarios || t.scenarios.includes(scenario.name),
      );
      // Rotate the order each round so that no target always runs first (or last) in a round.
      const shift = r % targets.length;
      for (const target of [...targets.slice(shift), ...targets.slice(0, shift)]) {
        const load = (seconds: number) =>
          loadHttp(target.server, scenario, options.fixtures, {
            seconds,
            connections: options.connections,
          });
        if (options.warmup > 0) await load(options.warmup);
        await target.statements?.reset();
        const m = await load(options.duration);
        if (target.statements) {
          Object.assign(m, statementsPerRequest(await target.statements.read(), m.sent ?? 0));
        }
        results[target.key] = m;
        options.onMeasurement(r, scenario, target.key, m);
      }
      for (const [key, m] of (await options.database?.(scenario)) ?? []) {
        results[key] = m;
        options.onMeasurement(r, scenario, key, m);
      }
      round[scenario.name] = results;
    }
    rounds.push(round);
  }
  return rounds;
}
