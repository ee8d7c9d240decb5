import autocannon from 'autocannon';
import type { ServerProcess } from '../backend/test/support/processes.ts';
import { percentile } from '../backend/test/support/stats.ts';
import type { Fixture, StatementCounter, StatementCounts } from './database.ts';
import { cpuSnapshot, machineLoad, type MachineLoad } from './machine.ts';
import {
  newTargetState,
  requestFor,
  type Scenario,
  type ScenarioName,
  type TargetState,
} from './scenarios.ts';

/** One measurement of one target under one scenario. */
export interface Measurement extends Partial<MachineLoad> {
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
  /** Entries (changes and deletions) per sync answer: near 0 when clients keep up. */
  entriesPerAnswer?: number;
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
 * and tasks), with the server's CPU time per request, its memory at the end, and what else the
 * machine was doing meanwhile.
 */
export async function loadHttp(
  server: ServerProcess,
  scenario: Scenario,
  fixtures: readonly Fixture[],
  options: {
    seconds: number;
    connections: number;
    state: TargetState;
    /** The benchmark's PostgreSQL, whose CPU is ours, not other people's. */
    postgresPid?: number | undefined;
  },
): Promise<Measurement> {
  let next = 0;
  // autocannon's own percentiles are whole milliseconds; sub-millisecond latencies need the raw ones.
  const latencies: number[] = [];
  const { onAnswer } = scenario;
  const instance = autocannon({
    url: server.baseUrl,
    connections: options.connections,
    duration: options.seconds,
    requests: [
      {
        method: scenario.method,
        setupRequest: (request, context) => {
          const fixture = fixtures[next++ % fixtures.length]!;
          // A connection waits for each answer before its next request: the answer is this one's.
          context['fixture'] = fixture;
          return { ...request, ...requestFor(scenario, fixture, options.state) };
        },
        ...(onAnswer && {
          onResponse: (status, body, context) => {
            if (status < 300)
              onAnswer(context['fixture'] as Fixture, JSON.parse(body), options.state);
          },
        }),
      },
    ],
  });
  instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  const synced = { answers: options.state.syncAnswers, entries: options.state.syncEntries };
  const before = {
    cpuMs: server.cpuMs(),
    logBytes: server.stdoutBytes(),
    machine: cpuSnapshot(options.postgresPid),
  };
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
    ...(onAnswer && {
      entriesPerAnswer:
        (options.state.syncEntries - synced.entries) /
        Math.max(1, options.state.syncAnswers - synced.answers),
    }),
    ...machineLoad(before.machine, cpuSnapshot(options.postgresPid), cpuMs),
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

/** Starts the background writer for the scenarios that have one; returns how to stop it. */
export type StartWriter = () => () => Promise<void>;

/**
 * `rounds` rounds of every scenario on every target (warm-up, then measurement), each followed
 * by the database-only measurement (pgbench) when there is one for the scenario. Each target
 * keeps its own state (sync tokens) for the whole run; a scenario prepares it before each
 * measurement. A scenario with a writer has it running throughout.
 */
export async function measureRounds(options: {
  rounds: number;
  warmup: number;
  duration: number;
  connections: number;
  scenarios: readonly Scenario[];
  fixtures: readonly Fixture[];
  targets: readonly HttpTarget[];
  postgresPid?: number | undefined;
  startWriter?: StartWriter;
  /** Measurements of the database alone (pgbench), by target key. */
  database?: (scenario: Scenario) => Promise<[key: string, Measurement][]>;
  onMeasurement: (round: number, scenario: Scenario, key: string, m: Measurement) => void;
}): Promise<Round[]> {
  const rounds: Round[] = [];
  const states = new Map<string, TargetState>();
  for (let r = 0; r < options.rounds; r++) {
    const round: Round = {};
    for (const scenario of options.scenarios) {
      const results: Record<string, Measurement> = {};
      const targets = options.targets.filter(
        (t) => !t.scenarios || t.scenarios.includes(scenario.name),
      );
      const stopWriter = scenario.writer ? options.startWriter?.() : undefined;
      try {
        // Rotate the order each round so that no target always runs first (or last) in a round.
        const shift = r % targets.length;
        for (const target of [...targets.slice(shift), ...targets.slice(0, shift)]) {
          const state = states.get(target.key) ?? newTargetState();
          states.set(target.key, state);
          await scenario.prepare?.(target.server.baseUrl, options.fixtures, state);
          const load = (seconds: number) =>
            loadHttp(target.server, scenario, options.fixtures, {
              seconds,
              connections: options.connections,
              state,
              postgresPid: options.postgresPid,
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
      } finally {
        await stopWriter?.();
      }
      round[scenario.name] = results;
    }
    rounds.push(round);
  }
  return rounds;
}
