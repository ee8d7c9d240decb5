import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const started = Date.now();

/** Progress lines with the time since the run started, so a slow phase shows in the CI log. */
export function log(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[prometheus ${seconds}s] ${message}`);
}

export function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Debian's prometheus package (server and promtool; no service is started). Skipped when promtool
 * is already on PATH, so a warm machine never touches apt.
 */
export function ensurePrometheusInstalled(): void {
  if (onPath('promtool') && onPath('prometheus')) return;
  log('promtool not found: installing Debian package prometheus');
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'prometheus']]) {
    const result = spawnSync('apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
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
export function run(command: string, args: string[], cwd?: string) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status ?? 128, output: `${result.stdout}${result.stderr}`.trim() };
}

export interface Started {
  readonly child: ChildProcess;
  readonly name: string;
  readonly logFile: string;
  /** The last lines of its output, for failure messages. */
  tail(lines?: number): string;
  /** SIGTERM by PID, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a long-running process with its output in `logFile` (never on the test's terminal). */
export function start(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): Started {
  const out = createWriteStream(options.logFile);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    name,
    logFile: options.logFile,
    tail(lines = 30) {
      try {
        return readFileSync(options.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null)
          process.kill(child.pid!, 'SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
      out.end();
    },
  };
}

/**
 * Polls `probe` until it returns a value (not undefined) or the deadline passes. Readiness is
 * always observed, never assumed after a fixed sleep; the short pause is only between attempts.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; process?: Started },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (options.process && options.process.child.exitCode !== null) {
      throw new Error(
        `${options.process.name} exited (${options.process.child.exitCode}) while waiting for ${what}:\n${options.process.tail()}`,
      );
    }
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(options.intervalMs ?? 250);
  }
  const tail = options.process
    ? `\n${options.process.name} output:\n${options.process.tail()}`
    : '';
  throw new Error(
    `timed out after ${options.timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}${tail}`,
  );
}
