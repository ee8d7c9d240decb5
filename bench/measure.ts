import autocannon from 'autocannon';
import type { ServerProcess } from '../backend/test/support/processes.ts';
import { percentile } from '../backend/test/support/stats.ts';
import type { Fixture } from './database.ts';
import { headersFor, type Scenario } from './scenarios.ts';

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
  };
}

/** A server measured under some or all scenarios. */
export interface HttpTarget {
  /** Its key in the results: backend, baseline, backend-metrics-off… */
  key: string;
  server: ServerProcess;
  /** The scenarios it is measured under (all when absent). */
  only?: readonly Scenario['name'][];
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
  database?: (scenario: Scenario) => Promise<[key: string, Measurement] | undefined>;
  onMeasurement: (round: number, scenario: Scenario, key: string, m: Measurement) => void;
}): Promise<Round[]> {
  const rounds: Round[] = [];
  for (let r = 0; r < options.rounds; r++) {
    const round: Round = {};
    for (const scenario of options.scenarios) {
      const results: Record<string, Measurement> = {};
      const targets = options.targets.filter((t) => !t.only || t.only.includes(scenario.name));
      // Rotate the order each round so that no target always runs first (or last) in a round.
      const shift = r % targets.length;
      for (const target of [...targets.slice(shift), ...targets.slice(0, shift)]) {
        const load = (seconds: number) =>
          loadHttp(target.server, scenario, options.fixtures, {
            seconds,
            connections: options.connections,
          });
        if (options.warmup > 0) await load(options.warmup);
        const m = await load(options.duration);
        results[target.key] = m;
        options.onMeasurement(r, scenario, target.key, m);
      }
      const database = await options.database?.(scenario);
      if (database) {
        const [key, m] = database;
        results[key] = m;
        options.onMeasurement(r, scenario, key, m);
      }
      round[scenario.name] = results;
    }
    rounds.push(round);
  }
  return rounds;
}
