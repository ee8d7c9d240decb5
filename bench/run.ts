import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { freePort } from '../backend/test/support/ports.ts';
import { startBenchDatabase, type BenchDatabase, type Fixture } from './database.ts';
import { findPgbench, runPgbench, type Measurement } from './pgbench.ts';
import { startServer, type ServerProcess } from './processes.ts';
import { formatSummary, summariseProfileFile } from './profile-summary.ts';

/**
 * `npm run bench`: the backend against its baselines, side by side in one run.
 * See README.md (Performance and resilience) for what each column means and a recorded run.
 */

const usage = `usage: npm run bench -- [options]
  --duration S      seconds measured per scenario and target (default 5)
  --warmup S        seconds of unmeasured load before each measurement (default 1)
  --rounds N        rounds; medians are reported (default 3)
  --connections N   concurrent HTTP connections and pgbench clients (default 10)
  --only LIST       comma-separated scenarios: get-by-id,list,create,health (default all)
  --source          run the backend from TypeScript with tsx instead of the compiled backend/dist
  --profile         instead of the comparison: CPU-profile the backend under GET-by-id
  --smoke           a few seconds in all, to keep the harness working (CI)`;

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '10' },
    only: { type: 'string', default: 'get-by-id,list,create,health' },
    source: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(usage);
  process.exit(0);
}
const positive = (name: string, value: string, allowZero = false): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    console.error(
      `--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number\n${usage}`,
    );
    process.exit(2);
  }
  return n;
};
const options = flags.smoke
  ? { duration: 1, warmup: 0.5, rounds: 1, connections: 4, users: 5, tasksPerUser: 50 }
  : {
      duration: positive('duration', flags.duration),
      warmup: positive('warmup', flags.warmup, true),
      rounds: Math.round(positive('rounds', flags.rounds)),
      connections: Math.round(positive('connections', flags.connections)),
      users: 50,
      tasksPerUser: 200,
    };
const listLimit = 20;
const root = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(root, 'bench', 'results');
const log = (line: string) => console.log(line);

// ---- scenarios: the same requests for the backend and the node:http baseline ----------------

interface Scenario {
  name: string;
  label: string;
  method: 'GET' | 'POST';
  path: (f: Fixture) => string;
  body?: string;
  auth: boolean;
  expect: number;
}

const scenarios: Scenario[] = [
  {
    name: 'get-by-id',
    label: 'GET /api/v1/tasks/:id',
    method: 'GET',
    path: (f) => `/api/v1/tasks/${f.taskId}`,
    auth: true,
    expect: 200,
  },
  {
    name: 'list',
    label: `GET /api/v1/tasks?limit=${listLimit}`,
    method: 'GET',
    path: () => `/api/v1/tasks?limit=${listLimit}`,
    auth: true,
    expect: 200,
  },
  {
    name: 'create',
    label: 'POST /api/v1/tasks',
    method: 'POST',
    path: () => '/api/v1/tasks',
    body: JSON.stringify({ title: 'Benchmark task' }),
    auth: true,
    expect: 201,
  },
  {
    name: 'health',
    label: 'GET /api/health/ready',
    method: 'GET',
    path: () => '/api/health/ready',
    auth: false,
    expect: 200,
  },
];

const active = scenarios.filter((s) => flags.only.split(',').includes(s.name));
if (active.length === 0) {
  console.error(`--only names none of: ${scenarios.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

function headersFor(scenario: Scenario, fixture: Fixture): Record<string, string> {
  const headers: Record<string, string> = {};
  if (scenario.auth) headers['authorization'] = `Bearer ${fixture.token}`;
  if (scenario.body) headers['content-type'] = 'application/json';
  return headers;
}

/** autocannon against one server, rotating over the fixtures (users, their tokens and tasks). */
async function load(
  server: ServerProcess,
  scenario: Scenario,
  fixtures: Fixture[],
  seconds: number,
): Promise<Measurement> {
  let next = 0;
  // autocannon's own percentiles are whole milliseconds; sub-millisecond latencies need the raw ones.
  const latencies: number[] = [];
  const instance = autocannon({
    url: server.baseUrl,
    connections: options.connections,
    duration: seconds,
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
  const cpuBefore = server.cpuMs();
  const result = await instance;
  const cpuMs = server.cpuMs() - cpuBefore;
  const sorted = Float64Array.from(latencies).sort();
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  return {
    rps: latencies.length / result.duration,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    requests: latencies.length,
    failures: result.non2xx + result.errors + result.timeouts,
    cpuUsPerRequest: (cpuMs * 1000) / Math.max(1, latencies.length),
  };
}

/** One request per scenario: right status, and the same JSON shape from backend and baseline. */
async function checkScenarios(servers: ServerProcess[], fixture: Fixture): Promise<void> {
  for (const scenario of scenarios) {
    const shapes: string[] = [];
    for (const server of servers) {
      const res = await fetch(`${server.baseUrl}${scenario.path(fixture)}`, {
        method: scenario.method,
        headers: headersFor(scenario, fixture),
        ...(scenario.body === undefined ? {} : { body: scenario.body }),
      });
      const body: unknown = await res.json();
      if (res.status !== scenario.expect) {
        throw new Error(
          `${server.name} ${scenario.label}: expected ${scenario.expect}, got ${res.status} ${JSON.stringify(body)}`,
        );
      }
      const sample = (body as { items?: unknown[] }).items?.[0] ?? body;
      shapes.push(
        Object.keys(sample as object)
          .sort()
          .join(','),
      );
    }
    if (new Set(shapes).size !== 1) {
      throw new Error(
        `${scenario.label}: backend and baseline answer differently: ${shapes.join(' | ')}`,
      );
    }
  }
}

// ---- processes ------------------------------------------------------------------------------

const backendArgs = (extra: string[] = []) =>
  flags.source
    ? [...extra, '--import', 'tsx', path.join(root, 'backend/src/main.ts')]
    : [...extra, path.join(root, 'backend/dist/main.js')];

async function startBackend(
  name: string,
  db: BenchDatabase,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name,
    args: backendArgs(nodeArgs),
    port,
    readyPath: '/api/health/ready',
    env: {
      // What a production deployment runs: NODE_ENV=production, info logs, metrics on.
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      METRICS_ENABLED: 'true',
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: String(await freePort()),
      DATABASE_URL: db.url,
      SHUTDOWN_DELAY_MS: '0',
      ...env,
    },
  });
}

async function startBaseline(db: BenchDatabase, nodeArgs: string[] = []): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name: 'node:http + pg',
    args: [...nodeArgs, '--import', 'tsx', path.join(root, 'bench/baseline-server.ts')],
    port,
    readyPath: '/api/health/ready',
    env: { PORT: String(port), DATABASE_URL: db.url, DATABASE_POOL_MAX: '10' },
  });
}

// ---- statistics and output ------------------------------------------------------------------

const median = (values: number[]): number => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

function box() {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  let pgbenchVersion: string | undefined;
  try {
    pgbenchVersion = execFileSync('pgbench', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    pgbenchVersion = undefined;
  }
  return {
    nproc: os.availableParallelism(),
    cpu: cpu ?? os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    pgbench: pgbenchVersion,
  };
}

type Target = 'backend' | 'backend-metrics-off' | 'backend-log-warn' | 'baseline' | 'pgbench';
type Round = Record<string, Partial<Record<Target, Measurement>>>;

async function compare(): Promise<void> {
  const started = Date.now();
  log(
    `load average before: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (!flags.source) {
    log('building backend/dist (npm run build)');
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  }
  const pgbench = findPgbench(log);
  const db = await startBenchDatabase({ users: options.users, tasksPerUser: options.tasksPerUser });
  const servers: ServerProcess[] = [];
  try {
    const pgVersion = await (async () => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
      await client.end();
      return rows[0]!.server_version;
    })();
    const backend = await startBackend('backend', db, {});
    const metricsOff = await startBackend('backend, METRICS_ENABLED=false', db, {
      METRICS_ENABLED: 'false',
    });
    const logWarn = await startBackend('backend, LOG_LEVEL=warn', db, { LOG_LEVEL: 'warn' });
    const baseline = await startBaseline(db);
    servers.push(backend, metricsOff, logWarn, baseline);
    await checkScenarios([backend, baseline], db.fixtures[0]!);
    log(
      `PostgreSQL ${pgVersion}; backend from ${flags.source ? 'TypeScript via tsx' : 'backend/dist (compiled)'}; ` +
        `${options.connections} connections; ${options.duration} s per measurement, ${options.rounds} round(s)`,
    );

    const httpTargets: [Target, ServerProcess][] = [
      ['backend', backend],
      ['baseline', baseline],
      ['backend-metrics-off', metricsOff],
      ['backend-log-warn', logWarn],
    ];
    const rounds: Round[] = [];
    let logBytesPerRequest = NaN;
    for (let r = 0; r < options.rounds; r++) {
      const round: Round = {};
      for (const scenario of active) {
        const results: Partial<Record<Target, Measurement>> = {};
        // The variants of the backend only for GET-by-id: they measure one thing each.
        const targets = httpTargets.filter(
          ([t]) => t === 'backend' || t === 'baseline' || scenario.name === 'get-by-id',
        );
        // Rotate the order each round so that no target always runs first (or last) in a round.
        const ordered = [
          ...targets.slice(r % targets.length),
          ...targets.slice(0, r % targets.length),
        ];
        for (const [target, server] of ordered) {
          if (options.warmup > 0) await load(server, scenario, db.fixtures, options.warmup);
          const before = { bytes: server.logBytes };
          const m = await load(server, scenario, db.fixtures, options.duration);
          if (target === 'backend' && scenario.name === 'get-by-id') {
            logBytesPerRequest = (server.logBytes - before.bytes) / Math.max(1, m.requests);
          }
          results[target] = m;
          log(
            `round ${r + 1} ${scenario.name.padEnd(9)} ${target.padEnd(19)} ${fmt(m.rps).padStart(6)} req/s  p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms  CPU ${fmt(m.cpuUsPerRequest ?? NaN)} µs/req${m.failures ? `  FAILURES ${m.failures}` : ''}`,
          );
        }
        if (pgbench) {
          const m = await runPgbench({
            pgbench,
            db,
            scenario: scenario.name,
            listLimit,
            clients: options.connections,
            seconds: options.duration,
            workDir: resultsDir,
          });
          if (m) {
            results.pgbench = m;
            log(
              `round ${r + 1} ${scenario.name.padEnd(9)} ${'pgbench'.padEnd(19)} ${fmt(m.rps).padStart(6)} tps    p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms${m.failures ? `  FAILURES ${m.failures}` : ''}`,
            );
          }
        }
        round[scenario.name] = results;
      }
      rounds.push(round);
    }

    // Medians over rounds; ratios are taken within a round (same conditions), then the median.
    const pick = (s: string, t: Target, k: keyof Measurement) =>
      median(rounds.map((round) => round[s]?.[t]?.[k] ?? NaN));
    const stats = (s: string, t: Target) => ({
      rps: pick(s, t, 'rps'),
      p50Ms: pick(s, t, 'p50Ms'),
      p99Ms: pick(s, t, 'p99Ms'),
      cpuUsPerRequest: pick(s, t, 'cpuUsPerRequest'),
    });
    const ratio = (s: string, a: Target, b: Target, k: 'rps' | 'cpuUsPerRequest' = 'rps') =>
      median(rounds.map((round) => (round[s]?.[a]?.[k] ?? NaN) / (round[s]?.[b]?.[k] ?? NaN)));
    const table = active.map((s) => ({
      scenario: s.label,
      backend: stats(s.name, 'backend'),
      baseline: stats(s.name, 'baseline'),
      pgbench: stats(s.name, 'pgbench'),
      backendPerBaseline: ratio(s.name, 'backend', 'baseline'),
      backendPerPgbench: ratio(s.name, 'backend', 'pgbench'),
      cpuPerRequestBackendPerBaseline: ratio(s.name, 'backend', 'baseline', 'cpuUsPerRequest'),
      failures: rounds.reduce(
        (sum, round) =>
          sum + (round[s.name]?.backend?.failures ?? 0) + (round[s.name]?.baseline?.failures ?? 0),
        0,
      ),
    }));
    const metricsRatio = ratio('get-by-id', 'backend', 'backend-metrics-off');
    const metricsCpuRatio = ratio('get-by-id', 'backend', 'backend-metrics-off', 'cpuUsPerRequest');
    const logRatio = ratio('get-by-id', 'backend', 'backend-log-warn');
    const logCpuRatio = ratio('get-by-id', 'backend', 'backend-log-warn', 'cpuUsPerRequest');
    const peakRssMiB = backend.peakRssMiB();

    const rows = [
      [
        'scenario',
        'backend req/s',
        'p50/p99 ms',
        'node:http+pg req/s',
        'p50/p99 ms',
        'pgbench tps',
        'p50/p99 ms',
        'backend/node:http',
        'backend/pgbench',
        'CPU µs/req backend, node:http',
      ],
      ...table.map((t) => [
        t.scenario,
        fmt(t.backend.rps),
        `${fmt(t.backend.p50Ms, 1)} / ${fmt(t.backend.p99Ms, 1)}`,
        fmt(t.baseline.rps),
        `${fmt(t.baseline.p50Ms, 1)} / ${fmt(t.baseline.p99Ms, 1)}`,
        fmt(t.pgbench.rps),
        `${fmt(t.pgbench.p50Ms, 1)} / ${fmt(t.pgbench.p99Ms, 1)}`,
        fmt(t.backendPerBaseline, 2),
        fmt(t.backendPerPgbench, 2),
        `${fmt(t.backend.cpuUsPerRequest)}, ${fmt(t.baseline.cpuUsPerRequest)}`,
      ]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    log('');
    log(
      `Medians of ${options.rounds} round(s), ${options.duration} s each, ${options.connections} connections:`,
    );
    for (const [i, row] of rows.entries()) {
      log(`| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`);
      if (i === 0) log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    }
    log('');
    log(
      `metrics middleware (GET by id), METRICS_ENABLED=true / false: req/s ${fmt(metricsRatio, 3)}, CPU per request ${fmt(metricsCpuRatio, 3)}`,
    );
    log(
      `request logging (GET by id), LOG_LEVEL=info / warn: req/s ${fmt(logRatio, 3)}, CPU per request ${fmt(logCpuRatio, 3)} (${fmt(logBytesPerRequest)} log bytes per request)`,
    );
    log(`peak RSS of the backend (VmHWM): ${fmt(peakRssMiB, 1)} MiB`);
    const failures = table.reduce((sum, t) => sum + t.failures, 0);
    if (failures > 0) log(`WARNING: ${failures} requests failed (non-2xx, errors or timeouts)`);
    log(
      `load average after: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );

    const report = {
      date: new Date().toISOString(),
      box: { ...box(), postgres: pgVersion },
      options: {
        ...options,
        smoke: flags.smoke,
        backend: flags.source ? 'tsx backend/src/main.ts' : 'node backend/dist/main.js',
      },
      loadAverageAtEnd: os.loadavg(),
      table,
      metricsMiddlewareRatio: metricsRatio,
      metricsMiddlewareCpuRatio: metricsCpuRatio,
      logInfoPerWarnCpuRatio: logCpuRatio,
      logInfoPerWarnRatio: logRatio,
      logBytesPerRequest,
      peakRssMiB,
      failures,
      rounds,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    await mkdir(resultsDir, { recursive: true });
    const file = path.join(
      resultsDir,
      `bench-${report.date.replace(/[:.]/g, '-')}${flags.smoke ? '-smoke' : ''}.json`,
    );
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    log(`saved ${path.relative(root, file)} (${report.seconds} s in all)`);
    if (failures > 0 && flags.smoke) process.exitCode = 1;
  } finally {
    for (const server of servers) await server.stop();
    await db.dispose();
  }
}

/** CPU-profiles the backend and the baseline, one after the other, under GET-by-id. */
async function profile(): Promise<void> {
  if (!flags.source)
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  const db = await startBenchDatabase({ users: options.users, tasksPerUser: options.tasksPerUser });
  const dir = path.join(resultsDir, `profile-${Date.now()}`);
  try {
    const scenario = scenarios[0]!;
    const rates: Record<string, number> = {};
    for (const name of ['backend', 'baseline'] as const) {
      const profileDir = path.join(dir, name);
      await mkdir(profileDir, { recursive: true });
      const cpuProf = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
      const server =
        name === 'backend'
          ? await startBackend('backend (profiled)', db, {}, cpuProf)
          : await startBaseline(db, cpuProf);
      let requests = 0;
      try {
        if (options.warmup > 0)
          requests += (await load(server, scenario, db.fixtures, options.warmup)).requests;
        const measured = await load(server, scenario, db.fixtures, options.duration);
        requests += measured.requests;
        rates[name] = measured.rps;
      } finally {
        await server.stop();
      }
      const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no .cpuprofile written in ${profileDir}`);
      log(`\n== ${name}: ${fmt(rates[name])} req/s under ${scenario.label}`);
      log(formatSummary(await summariseProfileFile(path.join(profileDir, file)), requests));
      log(
        `profile: ${path.relative(root, path.join(profileDir, file))} (Chrome DevTools → Performance)`,
      );
    }
    log(
      `\nbackend / node:http req/s while profiled: ${fmt(rates['backend']! / rates['baseline']!, 2)}`,
    );
  } finally {
    await db.dispose();
  }
}

await (flags.profile ? profile() : compare());
