import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { percentile } from '../backend/test/support/stats.ts';
import {
  fixtureValues,
  PerTransaction,
  type Baseline,
  type RequestValues,
  type Step,
} from './baselines.ts';
import type { BenchDatabase, DatabaseRole } from './database.ts';
import { cpuSnapshot, machineLoad } from './machine.ts';
import { statementsPerRequest, type Measurement } from './measure.ts';
import type { Column } from './report.ts';
import type { Scenario, ScenarioName } from './scenarios.ts';

/**
 * pgbench runs a baseline's statements for one request (baselines.ts) as one pgbench
 * "transaction", so its tps is the database's ceiling for that request. pgbench variables are
 * numbers only, so each fixture (token hash, user, task) becomes a script file of its own with
 * the values inlined, and pgbench picks among them at random (-f file@1).
 */

const hasCommand = (command: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/**
 * pgbench's path, installing Debian's PostgreSQL package (which carries it) when it is missing
 * and we are root with apt-get; undefined (the pgbench column is skipped) when neither works.
 */
export function findPgbench(log: (line: string) => void): string | undefined {
  if (hasCommand('pgbench')) return 'pgbench';
  if (process.getuid?.() === 0 && hasCommand('apt-get')) {
    log('pgbench is missing: installing postgresql-contrib with apt-get');
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
      execFileSync(
        'apt-get',
        ['install', '-y', '-qq', '--no-install-recommends', 'postgresql-contrib'],
        {
          stdio: 'inherit',
          env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        },
      );
    } catch (err) {
      log(`apt-get failed: ${(err as Error).message}`);
    }
    if (hasCommand('pgbench')) return 'pgbench';
  }
  log('pgbench not found (install postgresql-contrib): the pgbench baseline is skipped');
  return undefined;
}

/**
 * A parameter as an SQL literal, for a script that runs a parameterised statement's SQL. pgbench
 * takes `:name` anywhere in a command for a variable, even inside quotes, so a colon in a
 * string (a timestamp in a stored task) is written as a Unicode escape.
 */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Buffer.isBuffer(value)) return `'\\x${value.toString('hex')}'::bytea`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') {
    const quoted = value.replaceAll("'", "''");
    return quoted.includes(':')
      ? `U&'${quoted.replaceAll('\\', '\\\\').replaceAll(':', '\\003A')}'`
      : `'${quoted}'`;
  }
  if (value instanceof PerTransaction) {
    // Two random 62-bit numbers per transaction (the \set lines below). A uuid gets the version
    // (4) and variant nibbles of a random UUID: the API refuses ids that are not RFC 9562 UUIDs,
    // and a sync token names the last task of a page by its id.
    const hex = (n: string) => `lpad(to_hex(:${n}::bigint), 16, '0')`;
    const digits = `${hex('fresh_hi')} || ${hex('fresh_lo')}`;
    return value.kind === 'uuid'
      ? `overlay(overlay(${digits} placing '4' from 13) placing '8' from 17)::uuid`
      : `('pgbench-' || :fresh_hi::bigint || '-' || :fresh_lo::bigint)`;
  }
  throw new Error(`no SQL literal for ${typeof value}`);
}

/**
 * The SQL of `steps` for one set of request values, parameters inlined. Values that must be new
 * in every request (task ids, idempotency keys) come from pgbench variables set afresh for each
 * transaction.
 */
export function pgbenchScript(steps: readonly Step[], values: RequestValues): string {
  let fresh = false;
  const commands = steps.map((step) => {
    const params = step.params(values);
    fresh ||= params.some((p) => p instanceof PerTransaction);
    // The declared SQL has no "$" but its parameters' (no dollar quotes, no "$" in literals).
    const sql = step.sql.replace(/\$(\d+)/g, (_, n: string) => literal(params[Number(n) - 1]));
    return `${sql.trim()};\n`;
  });
  const setFresh = fresh
    ? [
        '\\set fresh_hi random(0, 4611686018427387903)\n',
        '\\set fresh_lo random(0, 4611686018427387903)\n',
      ]
    : [];
  return [...setFresh, ...commands].join('');
}

export async function runPgbench(options: {
  pgbench: string;
  db: BenchDatabase;
  steps: readonly Step[] | undefined;
  scenario: ScenarioName;
  /** Each statement prepared once per connection (the baseline's `prepared`). */
  prepared?: boolean | undefined;
  /** The role pgbench logs in as; its statements are counted. */
  role: DatabaseRole;
  name: string;
  clients: number;
  seconds: number;
  workDir: string;
}): Promise<Measurement | undefined> {
  const { steps } = options;
  if (!steps) return undefined;
  const dir = path.join(options.workDir, `pgbench-${options.name}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  // A sync starts where each user's changes stand now (see fixtureValues).
  const heads = options.scenario === 'sync' ? await options.db.syncHeads() : undefined;
  for (const [i, fixture] of options.db.fixtures.slice(0, 100).entries()) {
    const file = path.join(dir, `script-${i}.sql`);
    await writeFile(file, pgbenchScript(steps, fixtureValues(fixture, options.scenario, heads)));
    files.push('-f', `${file}@1`);
  }
  const args = [
    '-h',
    options.db.host,
    '-p',
    String(options.db.port),
    '-U',
    options.role.name,
    '-n', // no vacuum of pgbench's own tables: there are none
    '-M',
    // The protocols node-postgres uses: unnamed or named statements with parameters.
    options.prepared ? 'prepared' : 'extended',
    '-c',
    String(options.clients),
    '-j',
    '1',
    '-T',
    String(Math.max(1, Math.round(options.seconds))),
    '-l',
    '--log-prefix',
    path.join(dir, 'log'),
    ...files,
    options.db.database,
  ];
  await options.role.statements.reset();
  const machineBefore = cpuSnapshot(options.db.postgresPid);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(options.pgbench, args, {
      env: { ...process.env, PGPASSWORD: options.role.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`pgbench exited ${code}: ${text}`)),
    );
  });
  // pgbench has exited: its CPU time is in the harness's (its waited-for children).
  const load = machineLoad(machineBefore, cpuSnapshot(options.db.postgresPid), 0);
  // Per-transaction log lines: client_id transaction_no latency_us script_no epoch epoch_us.
  const latencies: number[] = [];
  for (const name of await readdir(dir)) {
    if (!name.startsWith('log')) continue;
    for (const line of (await readFile(path.join(dir, name), 'utf8')).split('\n')) {
      const latency = Number(line.split(' ')[2]);
      if (Number.isFinite(latency) && line) latencies.push(latency / 1000);
    }
  }
  await rm(dir, { recursive: true, force: true });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(output);
  const failed = /number of failed transactions: (\d+)/.exec(output);
  return {
    rps: tps ? Number(tps[1]) : latencies.length / options.seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    requests: latencies.length,
    failures: failed ? Number(failed[1]) : 0,
    ...statementsPerRequest(await options.role.statements.read(), latencies.length),
    ...load,
  };
}

/**
 * pgbench on each baseline's statements, as a role of its own per baseline: the database-only
 * measurements of a scenario (none for a scenario without statements), and their table columns.
 */
export async function pgbenchTargets(options: {
  pgbench: string;
  db: BenchDatabase;
  baselines: readonly Baseline[];
  clients: number;
  seconds: number;
  workDir: string;
}): Promise<{
  columns: Column[];
  measure: (scenario: Scenario) => Promise<[key: string, Measurement][]>;
}> {
  const runs: { key: string; baseline: Baseline; role: DatabaseRole }[] = [];
  for (const baseline of options.baselines) {
    const key = `pgbench:${baseline.name}`;
    runs.push({ key, baseline, role: await options.db.role(key) });
  }
  return {
    columns: runs.map(({ key, baseline }) => ({
      key,
      label: `pgbench, ${baseline.name} statements`,
      inlinedValues: true,
    })),
    measure: async (scenario) => {
      const measured: [string, Measurement][] = [];
      for (const { key, baseline, role } of runs) {
        const m = await runPgbench({
          ...options,
          role,
          steps: baseline.plans[scenario.name],
          scenario: scenario.name,
          prepared: baseline.prepared,
          name: `${baseline.name}-${scenario.name}`,
        });
        if (m) measured.push([key, m]);
      }
      return measured;
    },
  };
}
