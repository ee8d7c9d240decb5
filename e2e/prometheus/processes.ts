import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { GiveUp, waitFor } from '../../backend/test/support/wait.ts';

/**
 * What this suite needs beyond the shared testkit (backend/test/support): Debian's binaries
 * (Prometheus, promtool, the two exporters, PostgreSQL 15 for the backup script's pg_dump),
 * installed on first use, and a starter for processes that are not node servers. Waiting is the
 * testkit's waitFor.
 */

const started = Date.now();

/** Progress lines with the time since the run started, so a slow phase shows in the CI log. */
export function log(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[prometheus ${seconds}s] ${message}`);
}

export function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Debian's PostgreSQL 15 server and client, for the backup script (its pg_dump is 15's). */
export const postgres15Bin = '/usr/lib/postgresql/15/bin';

/** The binary each package provides, so a warm machine never touches apt. */
const packages: Record<string, string> = {
  prometheus: 'prometheus',
  promtool: 'prometheus',
  'prometheus-postgres-exporter': 'prometheus-postgres-exporter',
  'prometheus-node-exporter': 'prometheus-node-exporter',
  [`${postgres15Bin}/pg_ctl`]: 'postgresql-15',
};

/**
 * Installs the Debian packages whose binaries are missing. Services are never started: the packages'
 * scripts see runlevel 1 (invoke-rc.d then starts nothing), and the test starts what it needs itself.
 */
export function ensureDebianPackages(): void {
  const missing = [
    ...new Set(
      Object.entries(packages)
        .filter(([binary]) => !onPath(binary))
        .map(([, name]) => name),
    ),
  ];
  if (missing.length === 0) return;
  log(`installing Debian packages ${missing.join(', ')}`);
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...missing]]) {
    const result = spawnSync('apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' },
      encoding: 'utf8',
      timeout: 480_000,
    });
    if (result.status !== 0) {
      throw new Error(
        `apt-get ${args.join(' ')} failed (${result.status}): ${result.stderr || String(result.error)}`,
      );
    }
  }
}

/** Runs a command to completion; resolves with its exit code and output. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
) {
  const result = spawnSync(command, args, { ...options, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status ?? 128, output: `${result.stdout}${result.stderr}`.trim() };
}

export interface Started {
  readonly child: ChildProcess;
  readonly name: string;
  /** The last lines of its output, for failure messages. */
  tail(lines?: number): string;
  running(): boolean;
  /**
   * SIGTERM to its process group (it runs in one of its own, so a shell script's children go
   * too), SIGKILL after `graceMs`; resolves once it has exited.
   */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a long-running process in its own process group, its output in `logFile`. */
export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): Started {
  const out = createWriteStream(options.logFile);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // The group is already gone.
    }
  };
  return {
    child,
    name,
    running,
    tail(lines = 30) {
      try {
        return readFileSync(options.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    async stop(graceMs = 10_000) {
      if (child.pid === undefined) return;
      if (running()) signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      if (running()) await exited;
      // A child the shell left behind (a `sleep`) goes with the group.
      signal('SIGKILL');
      clearTimeout(timer);
      out.end();
    },
  };
}

/** waitFor that gives up as soon as `process` exits, with its output in the error. */
export function waitWhileRunning<T>(
  what: string,
  process: Started,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  return waitFor(
    what,
    async () => {
      if (!process.running()) {
        throw new GiveUp(`${process.name} exited while waiting for ${what}:\n${process.tail()}`);
      }
      return probe();
    },
    { timeoutMs, intervalMs: 250 },
  );
}
