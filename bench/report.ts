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
    `round ${round + 1} ${scenario.name.padEnd(9)} ${key.padEnd(19)} ${fmt(m.rps).padStart(6)} ${http ? 'req/s ' : 'tps   '}` +
    ` p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms` +
    (http ? `  CPU ${fmt(m.cpuUsPerRequest)} µs/req` : '') +
    (m.dbStatementsPerRequest === undefined
      ? ''
      : `  DB ${fmt(m.dbStatementsPerRequest, 2)} stmt/req`) +
    (m.failures ? `  FAILURES ${m.failures}` : '')
  );
}

type NumericField = {
  [K in keyof Measurement]-?: Measurement[K] extends number | undefined ? K : never;
}[keyof Measurement];

const medianOf = (values: number[]) => median(values.filter(Number.isFinite));

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
 * Whether two measurements ran the same statements, as many times per request, according to
 * PostgreSQL (pg_stat_statements' queryid: the same parse tree, whatever the whitespace).
 * Statements run less than once per two requests (readiness pings) do not count.
 */
export function sameStatements(
  a: Measurement | undefined,
  b: Measurement | undefined,
): boolean | undefined {
  if (!a?.dbStatements || !b?.dbStatements) return undefined;
  const shape = (m: Record<string, { perRequest: number }>) =>
    JSON.stringify(
      Object.entries(m)
        .filter(([, s]) => s.perRequest >= 0.5)
        .map(([id, s]) => [id, Math.round(s.perRequest)])
        .sort(([x], [y]) => String(x).localeCompare(String(y))),
    );
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
export function checkStatementCounts(
  rounds: readonly Round[],
  scenarios: readonly Scenario[],
  baselines: readonly Baseline[],
): string[] {
  const problems: string[] = [];
  for (const [r, round] of rounds.entries()) {
    for (const scenario of scenarios) {
      for (const baseline of baselines) {
        const declared = baseline.plans[scenario.name]?.length ?? 0;
        for (const key of [`baseline:${baseline.name}`, `pgbench:${baseline.name}`]) {
          const counted = round[scenario.name]?.[key]?.dbStatementsPerRequest;
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

/** Writes the report as bench/results/bench-<date>[-smoke].json; returns the file's path. */
export async function saveResults(
  dir: string,
  report: { date: string },
  smoke: boolean,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(
    dir,
    `bench-${report.date.replace(/[:.]/g, '-')}${smoke ? '-smoke' : ''}.json`,
  );
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
