import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { median } from '../backend/test/support/stats.ts';
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
    (m.failures ? `  FAILURES ${m.failures}` : '')
  );
}

const medianOf = (values: number[]) => median(values.filter(Number.isFinite));

/** The median over rounds of one figure of one target. */
export function pick(
  rounds: readonly Round[],
  scenario: string,
  key: string,
  field: keyof Measurement,
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
});

export type SummaryRow = ReturnType<typeof summarise>[number];

/** One row per scenario: backend, baseline and pgbench side by side, and their ratios. */
export function summarise(rounds: readonly Round[], scenarios: readonly Scenario[]) {
  return scenarios.map((s) => ({
    scenario: s.label,
    backend: stats(rounds, s.name, 'backend'),
    baseline: stats(rounds, s.name, 'baseline'),
    pgbench: stats(rounds, s.name, 'pgbench'),
    backendPerBaseline: ratio(rounds, s.name, 'backend', 'baseline'),
    backendPerPgbench: ratio(rounds, s.name, 'backend', 'pgbench'),
    cpuPerRequestBackendPerBaseline: ratio(
      rounds,
      s.name,
      'backend',
      'baseline',
      'cpuUsPerRequest',
    ),
    failures: rounds.reduce(
      (sum, round) =>
        sum +
        (round[s.name]?.['backend']?.failures ?? 0) +
        (round[s.name]?.['baseline']?.failures ?? 0),
      0,
    ),
  }));
}

/** A Markdown table, columns padded to line up in a terminal. */
export function markdownTable(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.flatMap((row, i) => [
    `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`,
    ...(i === 0 ? [`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`] : []),
  ]);
}

export function summaryTable(table: readonly SummaryRow[]): string[] {
  return markdownTable([
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
