import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../backend/test/support/processes.ts';
import { baselines, scenariosOf } from './baselines.ts';
import { parseBenchArgs, type BenchOptions } from './cli.ts';
import { startBenchDatabase } from './database.ts';
import { measureRounds } from './measure.ts';
import { findPgbench, pgbenchTargets } from './pgbench.ts';
import { pipelineBench } from './pipeline.ts';
import { profile } from './profile.ts';
import {
  checkStatementCounts,
  checkSyncKeptUp,
  describeMachine,
  describeSource,
  fmt,
  loadAverage,
  machineLine,
  machineSummary,
  measurementLine,
  saveResults,
  summarise,
  summaryTable,
  preparedStatementFigures,
  preparedStatementLines,
  variantFigures,
  variantLines,
} from './report.ts';
import { checkScenarios, selectScenarios } from './scenarios.ts';
import {
  buildBackend,
  startBaseline,
  startBenchBackend,
  startTargets,
  type TargetSpec,
} from './servers.ts';
import { createTaskWriter } from './writer.ts';

/**
 * `npm run bench`: the backend against its baselines, side by side in one run. This file only
 * wires: arguments (cli.ts), requests (scenarios.ts), what each baseline runs (baselines.ts),
 * processes (servers.ts), the sync's background writes (writer.ts), measurements (measure.ts,
 * pgbench.ts, machine.ts) and output (report.ts); --profile is profile.ts, --pipeline pipeline.ts.
 * See README.md (Performance and resilience) for what each column means and a recorded run.
 */

const resultsDir = path.join(repoRoot, 'bench', 'results');
const log = (line: string) => console.log(line);

async function compare(options: BenchOptions): Promise<void> {
  const started = Date.now();
  const active = selectScenarios(options.only);
  const loadAverageAtStart = os.loadavg();
  log(`load average before: ${loadAverage()}`);
  if (!options.source) {
    log('building backend/dist (npm run build)');
    buildBackend();
  }
  const pgbench = findPgbench(log);
  const db = await startBenchDatabase({ users: options.users, tasksPerUser: options.tasksPerUser });
  const writer = await createTaskWriter(db.url, db.fixtures);
  try {
    const backend =
      (name: string, env: Record<string, string> = {}) =>
      (url: string) =>
        startBenchBackend(name, url, { source: options.source, env });
    const specs: TargetSpec[] = [
      { key: 'backend', label: 'backend', start: backend('backend') },
      ...baselines.map((baseline) => ({
        key: `baseline:${baseline.name}`,
        label: baseline.label,
        start: (url: string) => startBaseline(baseline, url),
        scenarios: scenariosOf(baseline),
      })),
      // The variants of the backend only for GET-by-id: they measure one thing each.
      {
        key: 'backend-metrics-off',
        label: 'backend, METRICS_ENABLED=false',
        start: backend('backend, METRICS_ENABLED=false', { METRICS_ENABLED: 'false' }),
        scenarios: ['get-by-id'],
        variant: true,
      },
      {
        key: 'backend-log-warn',
        label: 'backend, LOG_LEVEL=warn',
        start: backend('backend, LOG_LEVEL=warn', { LOG_LEVEL: 'warn' }),
        scenarios: ['get-by-id'],
        variant: true,
      },
      // Issue 15 keeps prepared statements only if they pay: the backend without them, under
      // every scenario that runs SQL.
      {
        key: 'backend-unprepared',
        label: 'backend, DATABASE_PREPARED_STATEMENTS=false',
        start: backend('backend, DATABASE_PREPARED_STATEMENTS=false', {
          DATABASE_PREPARED_STATEMENTS: 'false',
        }),
        scenarios: active.map((s) => s.name).filter((name) => name !== 'health'),
        variant: true,
      },
    ];
    const { targets, stop } = await startTargets(db, specs);
    try {
      const database =
        pgbench &&
        (await pgbenchTargets({
          pgbench,
          db,
          baselines,
          clients: options.connections,
          seconds: options.duration,
          workDir: resultsDir,
        }));
      const columns = [
        ...targets.filter((t) => !t.variant).map(({ key, label }) => ({ key, label })),
        ...(database ? database.columns : []),
      ];
      await checkScenarios(
        targets.filter((t) => !t.variant),
        active,
        db.fixtures[0]!,
        (fixture) => writer.touch(fixture),
      );
      log(
        `PostgreSQL ${db.serverVersion}; backend from ${options.source ? 'TypeScript via tsx' : 'backend/dist (compiled)'}; ` +
          `${options.connections} connections; ${options.duration} s per measurement, ${options.rounds} round(s)`,
      );

      const rounds = await measureRounds({
        ...options,
        scenarios: active,
        fixtures: db.fixtures,
        targets,
        postgresPid: db.postgresPid,
        startWriter: () => writer.start(),
        ...(database && { database: database.measure }),
        onMeasurement: (round, scenario, key, m) => log(measurementLine(round, scenario, key, m)),
      });

      const table = summarise(rounds, active, columns);
      const variants = variantFigures(rounds);
      const prepared = preparedStatementFigures(rounds, active);
      const peakRssMiB = targets[0]!.server.memory().peakMiB;
      const failures = table.reduce((sum, t) => sum + t.failures, 0);
      const statementProblems = [
        ...checkStatementCounts(rounds, active, baselines),
        ...checkSyncKeptUp(rounds),
      ];
      const machine = machineSummary(rounds);
      log('');
      log(
        `Medians of ${options.rounds} round(s), ${options.duration} s each, ${options.connections} connections:`,
      );
      for (const line of summaryTable(table, columns)) log(line);
      log('');
      for (const line of variantLines(variants)) log(line);
      for (const line of preparedStatementLines(prepared)) log(line);
      log(`peak RSS of the backend (VmHWM): ${fmt(peakRssMiB, 1)} MiB`);
      if (failures > 0) log(`WARNING: ${failures} requests failed (non-2xx, errors or timeouts)`);
      for (const problem of statementProblems) log(`CHECK FAILED: ${problem}`);
      log(machineLine(machine, os.availableParallelism()));
      log(`load average after: ${loadAverage()}`);

      const report = {
        date: new Date().toISOString(),
        source: describeSource(),
        box: { ...describeMachine(), postgres: db.serverVersion },
        options: {
          duration: options.duration,
          warmup: options.warmup,
          rounds: options.rounds,
          connections: options.connections,
          users: options.users,
          tasksPerUser: options.tasksPerUser,
          smoke: options.smoke,
          scenarios: active.map((s) => s.name),
          backend: options.source ? 'tsx backend/src/main.ts' : 'node backend/dist/main.js',
        },
        loadAverageAtStart,
        loadAverageAtEnd: os.loadavg(),
        machine,
        table,
        ...variants,
        preparedStatements: prepared,
        peakRssMiB,
        failures,
        statementProblems,
        rounds,
        seconds: Math.round((Date.now() - started) / 1000),
      };
      const file = await saveResults(resultsDir, report, options);
      log(`saved ${path.relative(repoRoot, file)} (${report.seconds} s in all)`);
      if ((failures > 0 && options.smoke) || statementProblems.length > 0) process.exitCode = 1;
    } finally {
      await stop();
    }
  } finally {
    await writer.end();
    await db.dispose();
  }
}

const options = parseBenchArgs();
if (options.profile) await profile(options, resultsDir, log);
else if (options.pipeline) await pipelineBench(options, resultsDir, log);
else {
  await compare(options);
  // The smoke test keeps both harnesses working.
  if (options.smoke) await pipelineBench(options, resultsDir, log);
}
