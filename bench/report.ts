import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { median } from '../backend/test/support/stats.ts';
import type { Baseline } from './baselines.ts';
import type { Measurement, Round } from './measure.ts';
import type { Scenario } from './scenarios.ts';

/** What a run prints and saves: medians over rounds, ratios within a round, the machine. */

export const fmt = (n: number | undefined, digits = 0): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '—';

export const loadAverage = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** The per-measurement progress line. */
export function measurementLine(
  round: number,
  scenario: Scenario,
  key: string,
  m: Measurement,
): string {
  const http = m.cpuUsPerRequest !== undefined;
  return (
    `round ${round + 1} ${scenario.name.padEnd(17)} ${key.padEnd(19)} ${fmt(m.rps).padStart(6)} ${http ? 'req/s ' : 'tps   '}` +
    ` p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms` +
    (http ? `  CPU ${fmt(m.cpuUsPerRequest)} µs/req` : '') +
    (m.dbStatementsPerRequest === undefined
      ? ''
      : `  DB ${fmt(m.dbStatementsPerRequest, 2)} stmt/req`) +
    (m.entriesPerAnswer === undefined ? '' : `  ${fmt(m.entriesPerAnswer, 3)} entries/answer`) +
    (m.otherCores === undefined ? '' : `  others ${fmt(m.otherCores, 2)} cores`) +
    (m.failures ? `  FAILURES ${m.failures}` : '')
  );
}

/**
 * What the machine did during the run's measurements, besides the benchmark: the cores other
 * processes kept busy (median and worst measurement) and the 1-minute load average.
 */
export function machineSummary(rounds: readonly Round[]) {
  const all = rounds.flatMap((round) => Object.values(round).flatMap((m) => Object.values(m)));
  const values = (f: (m: Measurement) => number | undefined) =>
    all.map(f).filter((n): n is number => n !== undefined && Number.isFinite(n));
  const others = values((m) => m.otherCores);
  const loads = values((m) => m.loadAverage1m);
  return {
    otherCoresMedian: medianOf(others),
    otherCoresMax: others.length > 0 ? Math.max(...others) : NaN,
    loadAverage1mMedian: medianOf(loads),
    loadAverage1mMax: loads.length > 0 ? Math.max(...loads) : NaN,
  };
}

export const machineLine = (m: ReturnType<typeof machineSummary>, cores: number): string =>
  `other processes during measurements: ${fmt(m.otherCoresMedian, 2)} cores median, ` +
  `${fmt(m.otherCoresMax, 2)} at worst (of ${cores}); 1-minute load average ${fmt(m.loadAverage1mMedian, 2)} median, ${fmt(m.loadAverage1mMax, 2)} at worst`;

type NumericField = {
  [K in keyof Measurement]-?: Measurement[K] extends number | undefined ? K : never;
}[keyof Measurement];

/** The median of the finite values (a measurement that failed leaves NaN). */
export const medianOf = (values: number[]) => median(values.filter(Number.isFinite));

/** The median over rounds of one figure of one target. */
export function pick(
  rounds: readonly Round[],
  scenario: string,
  key: string,
  field: NumericField,
): number {
  return medianOf(rounds.map((round) => round[scenario]?.[key]?.[field] ?? NaN));
}

/** a / b taken within each round (same conditions), then the median over rounds. */
export function ratio(
  rounds: readonly Round[],
  scenario: string,
  a: string,
  b: string,
  field: 'rps' | 'cpuUsPerRequest' = 'rps',
): number {
  return medianOf(
    rounds.map(
      (round) => (round[scenario]?.[a]?.[field] ?? NaN) / (round[scenario]?.[b]?.[field] ?? NaN),
    ),
  );
}

const stats = (rounds: readonly Round[], scenario: string, key: string) => ({
  rps: pick(rounds, scenario, key, 'rps'),
  p50Ms: pick(rounds, scenario, key, 'p50Ms'),
  p99Ms: pick(rounds, scenario, key, 'p99Ms'),
  cpuUsPerRequest: pick(rounds, scenario, key, 'cpuUsPerRequest'),
  dbStatementsPerRequest: pick(rounds, scenario, key, 'dbStatementsPerRequest'),
  entriesPerAnswer: pick(rounds, scenario, key, 'entriesPerAnswer'),
  otherCores: pick(rounds, scenario, key, 'otherCores'),
});

/**
 * The backend's variants under GET-by-id, each against the backend as deployed: what the metrics
 * middleware and one log line per request cost.
 */
export function variantFigures(rounds: readonly Round[]) {
  const against = (key: string, field: 'rps' | 'cpuUsPerRequest') =>
    ratio(rounds, 'get-by-id', 'backend', key, field);
  return {
    metricsMiddlewareRatio: against('backend-metrics-off', 'rps'),
    metricsMiddlewareCpuRatio: against('backend-metrics-off', 'cpuUsPerRequest'),
    logInfoPerWarnCpuRatio: against('backend-log-warn', 'cpuUsPerRequest'),
    logInfoPerWarnRatio: against('backend-log-warn', 'rps'),
    logBytesPerRequest: pick(rounds, 'get-by-id', 'backend', 'logBytesPerRequest'),
  };
}

export function variantLines(f: ReturnType<typeof variantFigures>): string[] {
  return [
    `metrics middleware (GET by id), METRICS_ENABLED=true / false: req/s ${fmt(f.metricsMiddlewareRatio, 3)}, CPU per request ${fmt(f.metricsMiddlewareCpuRatio, 3)}`,
    `request logging (GET by id), LOG_LEVEL=info / warn: req/s ${fmt(f.logInfoPerWarnRatio, 3)}, CPU per request ${fmt(f.logInfoPerWarnCpuRatio, 3)} (${fmt(f.logBytesPerRequest)} log bytes per request)`,
  ];
}

/**
 * Per scenario that runs SQL, the backend as deployed (named prepared statements) against the
 * backend with DATABASE_PREPARED_STATEMENTS=false, within each round.
 */
export function preparedStatementFigures(rounds: readonly Round[], scenarios: readonly Scenario[]) {
  return scenarios
    .filter((s) => rounds.some((round) => round[s.name]?.['backend-unprepared']))
    .map((s) => ({
      scenario: s.name,
      rpsRatio: ratio(rounds, s.name, 'backend', 'backend-unprepared', 'rps'),
      cpuRatio: ratio(rounds, s.name, 'backend', 'backend-unprepared', 'cpuUsPerRequest'),
    }));
}

export function preparedStatementLines(f: ReturnType<typeof preparedStatementFigures>): string[] {
  return f.map(
    ({ scenario, rpsRatio, cpuRatio }) =>
      `prepared statements (${scenario}), DATABASE_PREPARED_STATEMENTS=true / false: req/s ${fmt(rpsRatio, 3)}, CPU per request ${fmt(cpuRatio, 3)}`,
  );
}

/** What a table row of a target is called. */
export interface Column {
  key: string;
  label: string;
  /**
   * pgbench, which sends statements with their values inlined: PostgreSQL sees other parse
   * trees (constants, not parameters), so only its statement count compares with the servers'.
   */
  inlinedValues?: boolean;
}

/**
 * A statement's identity: its text as pg_stat_statements keeps it, with every constant and
 * parameter blanked and whitespace collapsed. Not the queryid: PostgreSQL 16 gives a named
 * prepared statement a second queryid once its plan is invalidated and the statement analysed
 * again (an autoanalyze of a table a write scenario fills does it; tried: the same INSERT counted
 * under two queryids), and the text it keeps for an entry has constants in place or replaced
 * by $n depending on which of the two created it.
 */
export function statementKey(query: string): string {
  return query
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/\$\d+/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    .replace(/\b(?:true|false|null)\b/gi, '?')
    .replace(/\s+/g, ' ')
    .replace(/\s*([(),])\s*/g, '$1')
    .trim();
}

/**
 * Whether two measurements ran the same statements, as many times per request, according to
 * PostgreSQL (pg_stat_statements, by statementKey). Statements run less than once per two
 * requests (readiness pings) do not count.
 */
export function sameStatements(
  a: Measurement | undefined,
  b: Measurement | undefined,
): boolean | undefined {
  if (!a?.dbStatements || !b?.dbStatements) return undefined;
  const shape = (m: Record<string, { query: string; perRequest: number }>) => {
    const byKey = new Map<string, number>();
    for (const { query, perRequest } of Object.values(m)) {
      const key = statementKey(query);
      byKey.set(key, (byKey.get(key) ?? 0) + perRequest);
    }
    return JSON.stringify(
      [...byKey]
        .filter(([, n]) => n >= 0.5)
        .map(([key, n]) => [key, Math.round(n)])
        .sort(([x], [y]) => String(x).localeCompare(String(y))),
    );
  };
  return shape(a.dbStatements) === shape(b.dbStatements);
}

export type SummaryRow = ReturnType<typeof summarise>[number];

/**
 * One entry per scenario: every target's medians, the backend's ratios to each (within a round,
 * then the median), and whether each ran the backend's statements in every round.
 */
export function summarise(
  rounds: readonly Round[],
  scenarios: readonly Scenario[],
  columns: readonly Column[],
) {
  return scenarios.map((s) => {
    const present = columns.filter(({ key }) => rounds.some((round) => round[s.name]?.[key]));
    const each = <T>(f: (key: string) => T, keys = present.map((c) => c.key)) =>
      Object.fromEntries(keys.map((key) => [key, f(key)]));
    const others = present.map((c) => c.key).filter((key) => key !== 'backend');
    return {
      scenario: s.label,
      targets: each((key) => stats(rounds, s.name, key)),
      backendPer: each(
        (key) => ({
          rps: ratio(rounds, s.name, 'backend', key),
          cpuUsPerRequest: ratio(rounds, s.name, 'backend', key, 'cpuUsPerRequest'),
        }),
        others,
      ),
      sameStatementsAsBackend: each((key) => {
        if (present.find((c) => c.key === key)?.inlinedValues) return undefined;
        const verdicts = rounds.map((round) =>
          sameStatements(round[s.name]?.['backend'], round[s.name]?.[key]),
        );
        return verdicts.includes(undefined) ? undefined : verdicts.every(Boolean);
      }, others),
      failures: rounds.reduce(
        (sum, round) =>
          sum + present.reduce((n, { key }) => n + (round[s.name]?.[key]?.failures ?? 0), 0),
        0,
      ),
    };
  });
}

/**
 * The harness checking itself: every baseline, and pgbench on its statements, ran exactly the
 * statements its declaration has, as PostgreSQL counted them. Returns what did not hold.
 */
const isTransactionControl = (sql: string) => /^\s*(BEGIN|COMMIT)\s*$/i.test(sql);

export function checkStatementCounts(
  rounds: readonly Round[],
  scenarios: readonly Scenario[],
  baselines: readonly Baseline[],
): string[] {
  const problems: string[] = [];
  for (const [r, round] of rounds.entries()) {
    for (const scenario of scenarios) {
      for (const baseline of baselines) {
        const steps = baseline.plans[scenario.name] ?? [];
        // pgbench -M prepared sends BEGIN and COMMIT as prepared statements too, and
        // pg_stat_statements counts utility statements run that way only now and then (tried:
        // 4.02 of 6; 0.05 per transaction each in another run): such a row is checked without them.
        const uncounted = steps.filter((s) => isTransactionControl(s.sql)).length;
        for (const key of [`baseline:${baseline.name}`, `pgbench:${baseline.name}`]) {
          const withoutControl = key.startsWith('pgbench:') && baseline.prepared === true;
          const declared = withoutControl ? steps.length - uncounted : steps.length;
          const measured = round[scenario.name]?.[key];
          const counted =
            withoutControl && measured?.dbStatements
              ? Object.values(measured.dbStatements)
                  .filter((s) => !isTransactionControl(s.query))
                  .reduce((sum, s) => sum + s.perRequest, 0)
              : measured?.dbStatementsPerRequest;
          // Readiness runs no statement per request, but a ping a second: well under 0.05.
          if (counted !== undefined && Math.abs(counted - declared) >= 0.05) {
            problems.push(
              `round ${r + 1} ${scenario.name} ${key}: ${fmt(counted, 3)} statements per request, ${declared} declared`,
            );
          }
        }
      }
    }
  }
  return problems;
}

/**
 * The harness checking the sync scenario measured what it says, incremental syncs of clients
 * that keep up: each answer carries about (changes a second per user) / (syncs a second per
 * user) entries, a few hundredths here. Clients that lost their tokens would get ever longer
 * answers, up to the page size.
 */
export function checkSyncKeptUp(rounds: readonly Round[]): string[] {
  return rounds.flatMap((round, r) =>
    Object.entries(round['sync'] ?? {}).flatMap(([key, m]) =>
      m.entriesPerAnswer !== undefined && m.entriesPerAnswer > 1
        ? [
            `round ${r + 1} sync ${key}: ${fmt(m.entriesPerAnswer, 2)} entries per answer; the clients did not keep up`,
          ]
        : [],
    ),
  );
}

/** A Markdown table, columns padded to line up in a terminal. */
export function markdownTable(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.flatMap((row, i) => [
    `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`,
    ...(i === 0 ? [`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`] : []),
  ]);
}

/** A row per scenario and target. */
export function summaryTable(table: readonly SummaryRow[], columns: readonly Column[]): string[] {
  const yesNo = (b: boolean | undefined) => (b === undefined ? '—' : b ? 'yes' : 'NO');
  return markdownTable([
    [
      'scenario',
      'target',
      'req/s',
      'p50 / p99 ms',
      'CPU µs/req',
      'DB statements/req',
      'backend / target req/s',
      'same statements as backend',
    ],
    ...table.flatMap((row) =>
      columns
        .filter(({ key }) => row.targets[key])
        .map(({ key, label }, i) => {
          const t = row.targets[key]!;
          const backend = key === 'backend';
          return [
            i === 0 ? row.scenario : '',
            label,
            fmt(t.rps),
            `${fmt(t.p50Ms, 1)} / ${fmt(t.p99Ms, 1)}`,
            fmt(t.cpuUsPerRequest),
            fmt(t.dbStatementsPerRequest, 2),
            backend ? '' : fmt(row.backendPer[key]?.rps, 2),
            backend ? '' : yesNo(row.sameStatementsAsBackend[key]),
          ];
        }),
    ),
  ]);
}

/** The code the run measured: the commit, and whether the working tree differed from it. */
export function describeSource(): { commit: string; dirty: boolean } | undefined {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
    return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain').length > 0 };
  } catch {
    return undefined;
  }
}

/** The machine the run was on, for the JSON record. */
export function describeMachine() {
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

/**
 * Writes the report in `dir`: bench-<date>[-<kind>][-smoke].json, git-ignored, or with `record`
 * recorded-<day>[-<kind>].json, which git keeps (-2, -3… for more the same day). Returns the path.
 */
export async function saveResults(
  dir: string,
  report: { date: string },
  options: { smoke: boolean; record: boolean; kind?: string },
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const kind = options.kind ? `-${options.kind}` : '';
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (!options.record) {
    const stamp = report.date.replace(/[:.]/g, '-');
    const file = path.join(dir, `bench-${stamp}${kind}${options.smoke ? '-smoke' : ''}.json`);
    await writeFile(file, text);
    return file;
  }
  for (let n = 1; ; n++) {
    const file = path.join(
      dir,
      `recorded-${report.date.slice(0, 10)}${kind}${n > 1 ? `-${n}` : ''}.json`,
    );
    try {
      await writeFile(file, text, { flag: 'wx' });
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
