import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { percentile } from '../backend/test/support/stats.ts';
import type { BenchDatabase, Fixture } from './database.ts';
import type { Measurement } from './measure.ts';

/**
 * pgbench runs the SQL the backend runs for one request (the session lookup, then the task query)
 * as one pgbench "transaction", so its tps is the database's ceiling for that request.
 * pgbench variables are numbers only, so each fixture (token hash, user, task) becomes a script
 * file of its own with the values inlined, and pgbench picks among them at random (-f file@1).
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

const columns = 'id, title, notes, completed, due_at, created_at, updated_at, version';
const sessionLookup = (f: Fixture) => `SELECT u.id, u.email, u.created_at
  FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = '\\x${f.tokenHash.toString('hex')}'::bytea AND s.expires_at > now();`;

/** The SQL of one request of each scenario, for one fixture. */
export const pgbenchScripts: Record<
  string,
  ((f: Fixture, listLimit: number) => string) | undefined
> = {
  'get-by-id': (f) =>
    `${sessionLookup(f)}\nSELECT ${columns} FROM tasks WHERE id = '${f.taskId}' AND user_id = '${f.userId}';\n`,
  list: (f, limit) =>
    `${sessionLookup(f)}\nSELECT ${columns} FROM tasks WHERE user_id = '${f.userId}' ORDER BY created_at DESC, id DESC LIMIT ${limit + 1};\n`,
  create: (f) =>
    `${sessionLookup(f)}\nINSERT INTO tasks (user_id, title, notes, completed, due_at) VALUES ('${f.userId}', 'Benchmark task', COALESCE(NULL, ''), COALESCE(NULL, false), NULL) RETURNING ${columns};\n`,
  // The health probe runs no SQL per request (readiness is cached for a second): no pgbench row.
  health: undefined,
};

export async function runPgbench(options: {
  pgbench: string;
  db: BenchDatabase;
  scenario: string;
  listLimit: number;
  clients: number;
  seconds: number;
  workDir: string;
}): Promise<Measurement | undefined> {
  const script = pgbenchScripts[options.scenario];
  if (!script) return undefined;
  const dir = path.join(options.workDir, `pgbench-${options.scenario}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const [i, fixture] of options.db.fixtures.slice(0, 100).entries()) {
    const file = path.join(dir, `script-${i}.sql`);
    await writeFile(file, script(fixture, options.listLimit));
    files.push('-f', `${file}@1`);
  }
  const args = [
    '-h',
    options.db.host,
    '-p',
    String(options.db.port),
    '-U',
    options.db.user,
    '-n', // no vacuum of pgbench's own tables: there are none
    '-M',
    'extended', // the protocol node-postgres uses for parameterised queries
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
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(options.pgbench, args, {
      env: { ...process.env, PGPASSWORD: options.db.password },
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
  };
}
