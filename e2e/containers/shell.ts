import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Kill the command (SIGKILL) after this long. */
  timeoutMs?: number;
  /** Resolve with the exit code instead of throwing when it is not 0. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const started = Date.now();

/** Progress lines with the time since the run started, so a slow phase shows in the CI log. */
export function log(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[containers ${seconds}s] ${message}`);
}

/** Runs a command without a shell; output is collected, never streamed to the terminal. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { cwd, env = process.env, input, timeoutMs = 600_000, allowFailure = false } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = {
        code: code ?? 128,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      };
      if (result.code === 0 || allowFailure) {
        resolve(result);
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with ${result.code}`;
      const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-30).join('\n');
      reject(new Error(`\`${[command, ...args].join(' ')}\` ${how}:\n${tail}`));
    });
    child.stdin.end(input);
  });
}

/** Like `run`, but only the trimmed stdout. */
export async function output(command: string, args: string[], options?: RunOptions) {
  return (await run(command, args, options)).stdout.trim();
}

/** The absolute path of an executable on PATH, or undefined. */
export async function which(name: string): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
