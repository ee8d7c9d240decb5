import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';
import { GiveUp, waitFor } from './wait.ts';

/**
 * Starting real server processes for tests, e2e suites and benchmarks: the backend exactly as
 * `npm start` (or the image) runs it, or any other node server. A harness only ever signals the
 * processes it started, by their PID.
 */

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** How node runs the backend: from source as `npm start` does (without npm in between, so
 * signals reach node), or the compiled build as the image does. */
export const backendEntry = {
  source: ['--import', 'tsx', 'backend/src/main.ts'],
  dist: ['backend/dist/main.js'],
} as const;

export interface ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly baseUrl: string;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  /** The most recent output lines (stdout and stderr), as written. */
  readonly lines: string[];
  /** Bytes written to stdout so far (the request log, for benchmarks). */
  readonly stdoutBytes: () => number;
  running(): boolean;
  /** stdout lines that are JSON (the backend's pino log), parsed. */
  logs(): Record<string, unknown>[];
  /** The last `n` output lines, for failure messages. */
  tail(n?: number): string;
  /** CPU time (user + system) used so far, in milliseconds, from /proc/<pid>/stat. */
  cpuMs(): number;
  /** Resident memory now (VmRSS) and its peak so far (VmHWM), in MiB. */
  memory(): { rssMiB: number; peakMiB: number };
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface ServerOptions {
  name: string;
  /** Arguments to node (the script and its flags). */
  args: readonly string[];
  env: Record<string, string>;
  port: number;
  /** A path that answers 200 once the server is ready. */
  readyPath: string;
  /** @default 60_000 */
  readyTimeoutMs?: number;
  /** How many output lines to keep. @default 5000 */
  keepLines?: number;
}

/** The unit of CPU times in /proc (`getconf CLK_TCK`, 100 on Linux in practice). */
export const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time (user + system) of a process so far, in milliseconds; with `children`, also that of
 * its children that have exited and been waited for (a harness's pgbench runs).
 */
export function procCpuMs(pid: number, options: { children?: boolean } = {}): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3, "state".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    const children = options.children ? Number(fields[13]) + Number(fields[14]) : 0;
    return ((own + children) * 1000) / clockTicksPerSecond;
  } catch {
    return NaN;
  }
}

export function procStatusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** A server that exited, or never answered ready, before its deadline. */
export class ServerDidNotStart extends Error {
  override name = 'ServerDidNotStart';

  constructor(
    message: string,
    /** The exit code, or null when it was killed or had to be stopped. */
    readonly exitCode: number | null,
    /** Everything it wrote. */
    readonly output: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Starts `node <args>` in the repository root and waits until `readyPath` answers 200; throws
 * ServerDidNotStart when it exits first or the deadline passes.
 */
export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const child = spawn(process.execPath, options.args, {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = options.keepLines ?? 5000;
  const lines: string[] = [];
  let stdoutBytes = 0;
  const collect = (stream: NodeJS.ReadableStream, counted: boolean) => {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      if (counted) stdoutBytes += chunk.length;
      partial += chunk.toString();
      const complete = partial.split('\n');
      partial = complete.pop() ?? '';
      lines.push(...complete.filter(Boolean));
      if (lines.length > keep) lines.splice(0, lines.length - keep);
    });
  };
  collect(child.stdout, true);
  collect(child.stderr, false);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const running = () => child.exitCode === null && child.signalCode === null;
  const server: ServerProcess = {
    name: options.name,
    child,
    pid: child.pid!,
    baseUrl: `http://127.0.0.1:${options.port}`,
    exited,
    lines,
    stdoutBytes: () => stdoutBytes,
    running,
    logs: () =>
      lines.flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    tail: (n = 20) => lines.slice(-n).join('\n'),
    cpuMs: () => procCpuMs(child.pid!),
    memory: () => ({
      rssMiB: procStatusMiB(child.pid!, 'VmRSS'),
      peakMiB: procStatusMiB(child.pid!, 'VmHWM'),
    }),
    async stop(graceMs = 20_000) {
      if (!running()) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (running()) child.kill('SIGKILL');
      }, graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  try {
    await waitFor(
      `${options.name} ready`,
      async () => {
        if (!running()) throw new GiveUp(`${options.name} exited with ${child.exitCode}`);
        const res = await fetch(`${server.baseUrl}${options.readyPath}`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeoutMs: options.readyTimeoutMs ?? 60_000 },
    );
  } catch (error) {
    const exitCode = await server.stop(2000);
    throw new ServerDidNotStart(
      `${options.name} did not become ready: ${(error as Error).message}\n${server.tail()}`,
      exitCode,
      server.tail(keep),
      { cause: error },
    );
  }
  return server;
}

export interface BackendProcess extends ServerProcess {
  readonly port: number;
  readonly metricsUrl: string;
}

/**
 * Starts the backend (`node --import tsx backend/src/main.ts`, or the build) with `env` on top of
 * settings fit for tests (loopback, free ports, JSON logs, no shutdown delay, a rate limit no
 * test trips by accident), and waits until readiness answers 200. Pass DATABASE_URL.
 */
export async function startBackend(
  name: string,
  env: Record<string, string>,
  options: {
    entry?: keyof typeof backendEntry;
    /** Flags for node before the entry (`--cpu-prof`, …). */
    nodeArgs?: readonly string[];
    readyTimeoutMs?: number;
  } = {},
): Promise<BackendProcess> {
  const port = Number(env['PORT'] ?? (await freePort()));
  const metricsPort = Number(env['METRICS_PORT'] ?? (await freePort()));
  const server = await startServer({
    name,
    args: [...(options.nodeArgs ?? []), ...backendEntry[options.entry ?? 'source']],
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      METRICS_ENABLED: 'true',
      AUTH_RATE_LIMIT_PER_MINUTE: '100000',
      SHUTDOWN_DELAY_MS: '0',
      ...env,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
    },
    port,
    readyPath: '/api/health/ready',
    ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
  });
  return Object.assign(server, { port, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` });
}
