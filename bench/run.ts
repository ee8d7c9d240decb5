import { mkdir, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { repoRoot, type ServerProcess } from '../backend/test/support/processes.ts';
import { twoQuery } from './baselines.ts';
import { parseBenchArgs, type BenchOptions } from './cli.ts';
import { startBenchDatabase } from './database.ts';
import { loadHttp, measureRounds, type HttpTarget } from './measure.ts';
import { findPgbench, runPgbench } from './pgbench.ts';
import { formatSummary, summariseProfileFile } from './profile-summary.ts';
import {
  describeMachine,
  fmt,
  loadAverage,
  measurementLine,
  pick,
  ratio,
  saveResults,
  summarise,
  summaryTable,
} from './report.ts';
import { checkScenarios, scenarios, selectScenarios } from './scenarios.ts';
import { buildBackend, startBaseline, startBenchBackend } from './servers.ts';

/**
 * `npm run bench`: the backend against its baselines, side by side in one run. This file only
 * wires: arguments (cli.ts), requests (scenarios.ts), processes (servers.ts), measurements
 * (measure.ts, pgbench.ts) and output (report.ts). See README.md (Performance and resilience)
 * for what each column means and a recorded run.
 */

const resultsDir = path.join(repoRoot, 'bench', 'results');
const log = (line: string) => console.log(line);

async function compare(options: BenchOptions): Promise<void> {
  const started = Date.now();
  const active = selectScenarios(options.only);
  log(`load average before: ${loadAverage()}`);
  if (!options.source) {
    log('building backend/dist (npm run build)');
    buildBackend();
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
    const backend = (name: string, env: Record<string, string> = {}) =>
      startBenchBackend(name, db.url, { source: options.source, env }).then((server) => {
        servers.push(server);
        return server;
      });
    const main = await backend('backend');
    const metricsOff = await backend('backend, METRICS_ENABLED=false', {
      METRICS_ENABLED: 'false',
    });
    const logWarn = await backend('backend, LOG_LEVEL=warn', { LOG_LEVEL: 'warn' });
    const baseline = await startBaseline(twoQuery, db.url);
    servers.push(baseline);
    await checkScenarios([main, baseline], db.fixtures[0]!);
    log(
      `PostgreSQL ${pgVersion}; backend from ${options.source ? 'TypeScript via tsx' : 'backend/dist (compiled)'}; ` +
        `${options.connections} connections; ${options.duration} s per measurement, ${options.rounds} round(s)`,
    );

    // The variants of the backend only for GET-by-id: they measure one thing each.
    const targets: HttpTarget[] = [
      { key: 'backend', server: main },
      { key: 'baseline', server: baseline },
      { key: 'backend-metrics-off', server: metricsOff, only: ['get-by-id'] },
      { key: 'backend-log-warn', server: logWarn, only: ['get-by-id'] },
    ];
    const rounds = await measureRounds({
      ...options,
      scenarios: active,
      fixtures: db.fixtures,
      targets,
      database: async (scenario) => {
        if (!pgbench) return undefined;
        const m = await runPgbench({
          pgbench,
          db,
          steps: twoQuery.plans[scenario.name],
          name: scenario.name,
          clients: options.connections,
          seconds: options.duration,
          workDir: resultsDir,
        });
        return m && ['pgbench', m];
      },
      onMeasurement: (round, scenario, key, m) => log(measurementLine(round, scenario, key, m)),
    });

    const table = summarise(rounds, active);
    const metricsRatio = ratio(rounds, 'get-by-id', 'backend', 'backend-metrics-off');
    const metricsCpuRatio = ratio(
      rounds,
      'get-by-id',
      'backend',
      'backend-metrics-off',
      'cpuUsPerRequest',
    );
    const logRatio = ratio(rounds, 'get-by-id', 'backend', 'backend-log-warn');
    const logCpuRatio = ratio(
      rounds,
      'get-by-id',
      'backend',
      'backend-log-warn',
      'cpuUsPerRequest',
    );
    const logBytesPerRequest = pick(rounds, 'get-by-id', 'backend', 'logBytesPerRequest');
    const peakRssMiB = main.memory().peakMiB;

    log('');
    log(
      `Medians of ${options.rounds} round(s), ${options.duration} s each, ${options.connections} connections:`,
    );
    for (const line of summaryTable(table)) log(line);
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
    log(`load average after: ${loadAverage()}`);

    const report = {
      date: new Date().toISOString(),
      box: { ...describeMachine(), postgres: pgVersion },
      options: {
        duration: options.duration,
        warmup: options.warmup,
        rounds: options.rounds,
        connections: options.connections,
        users: options.users,
        tasksPerUser: options.tasksPerUser,
        smoke: options.smoke,
        backend: options.source ? 'tsx backend/src/main.ts' : 'node backend/dist/main.js',
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
    const file = await saveResults(resultsDir, report, options.smoke);
    log(`saved ${path.relative(repoRoot, file)} (${report.seconds} s in all)`);
    if (failures > 0 && options.smoke) process.exitCode = 1;
  } finally {
    for (const server of servers) await server.stop();
    await db.dispose();
  }
}

/** CPU-profiles the backend and the baseline, one after the other, under GET-by-id. */
async function profile(options: BenchOptions): Promise<void> {
  if (!options.source) buildBackend();
  const db = await startBenchDatabase({ users: options.users, tasksPerUser: options.tasksPerUser });
  const dir = path.join(resultsDir, `profile-${Date.now()}`);
  try {
    const scenario = scenarios[0]!;
    const rates: Record<string, number> = {};
    for (const name of ['backend', 'baseline'] as const) {
      const profileDir = path.join(dir, name);
      await mkdir(profileDir, { recursive: true });
      const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
      const server =
        name === 'backend'
          ? await startBenchBackend('backend (profiled)', db.url, {
              source: options.source,
              nodeArgs,
            })
          : await startBaseline(twoQuery, db.url, nodeArgs);
      let requests = 0;
      try {
        const load = (seconds: number) =>
          loadHttp(server, scenario, db.fixtures, { seconds, connections: options.connections });
        if (options.warmup > 0) requests += (await load(options.warmup)).requests;
        const measured = await load(options.duration);
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
        `profile: ${path.relative(repoRoot, path.join(profileDir, file))} (Chrome DevTools → Performance)`,
      );
    }
    log(
      `\nbackend / node:http req/s while profiled: ${fmt(rates['backend']! / rates['baseline']!, 2)}`,
    );
  } finally {
    await db.dispose();
  }
}

const options = parseBenchArgs();
await (options.profile ? profile(options) : compare(options));
