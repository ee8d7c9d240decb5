import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from '../../../backend/test/support/ports.ts';
import { backendEntry } from '../../../backend/test/support/processes.ts';

/** A backend process this test started; only it is ever signalled (by its PID). */
export interface Backend {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly baseUrl: string;
  readonly metricsUrl: string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** The last log lines (JSON, as written), for failure messages. */
  readonly logs: string[];
  running(): boolean;
  /** Resident memory now (VmRSS) and its peak so far (VmHWM), in MiB. */
  memory(): { rssMiB: number; peakMiB: number };
  /** The pool gauges from the metrics port. */
  pool(): Promise<PoolGauges>;
  /** SIGTERM, then waits for the exit (SIGKILL after `timeoutMs`). Returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface PoolGauges {
  total: number;
  idle: number;
  waiting: number;
  max: number;
  /** Clients checked out of the pool right now: total - idle. */
  inUse: number;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; returns the milliseconds it took, or throws at the deadline. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  deadlineMs: number,
  intervalMs = 100,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return Date.now() - started;
    if (Date.now() - started > deadlineMs) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await sleep(intervalMs);
  }
}

function procStatusMiB(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export async function scrapeGauges(metricsUrl: string): Promise<PoolGauges> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) })).text();
  const value = (name: string) => {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!match) throw new Error(`${name} missing from ${metricsUrl}`);
    return Number(match[1]);
  };
  const total = value('db_pool_total_connections');
  const idle = value('db_pool_idle_connections');
  return {
    total,
    idle,
    waiting: value('db_pool_waiting_clients'),
    max: value('db_pool_max_connections'),
    inUse: total - idle,
  };
}

/**
 * Starts `node --import tsx backend/src/main.ts` (as `npm start` does, without npm in between)
 * with `env` on top of settings fit for tests, and waits until readiness answers 200.
 */
export async function startBackend(name: string, env: Record<string, string>): Promise<Backend> {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [...backendEntry.source], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      METRICS_ENABLED: 'true',
      AUTH_RATE_LIMIT_PER_MINUTE: '100000',
      SHUTDOWN_DELAY_MS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const keep = (chunk: Buffer) => {
    logs.push(...chunk.toString().split('\n').filter(Boolean));
    if (logs.length > 200) logs.splice(0, logs.length - 200);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const backend: Backend = {
    name,
    child,
    pid: child.pid!,
    baseUrl,
    metricsUrl,
    exited,
    logs,
    running: () => child.exitCode === null && child.signalCode === null,
    memory: () => ({
      rssMiB: procStatusMiB(child.pid!, 'VmRSS'),
      peakMiB: procStatusMiB(child.pid!, 'VmHWM'),
    }),
    pool: () => scrapeGauges(metricsUrl),
    async stop(timeoutMs = 20_000) {
      if (!backend.running()) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  try {
    await waitFor(
      `${name} ready`,
      async () => {
        if (!backend.running()) throw new Error(`${name} exited: ${logs.slice(-5).join('\n')}`);
        const res = await fetch(`${baseUrl}/api/health/ready`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.arrayBuffer();
        return res.status === 200;
      },
      60_000,
    );
  } catch (err) {
    await backend.stop(2000);
    throw new Error(
      `${name} did not become ready: ${(err as Error).message}\n${logs.slice(-10).join('\n')}`,
      { cause: err },
    );
  }
  return backend;
}

/** Registers a user over HTTP; returns its bearer token. */
export async function registerUser(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      email: `resilience-${Math.random().toString(36).slice(2)}@example.com`,
      password: 'a long enough password',
    }),
  });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 201 || !body.token)
    throw new Error(`register: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** Creates a task over HTTP; returns its id. */
export async function createTask(baseUrl: string, token: string, title: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ title }),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id)
    throw new Error(`create task: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}
