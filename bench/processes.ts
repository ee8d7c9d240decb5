import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A server process the harness started, and only it stops (by its PID). */
export interface ServerProcess {
  name: string;
  child: ChildProcess;
  baseUrl: string;
  /** Bytes the process wrote to stdout (its log), since the last reset. */
  logBytes: number;
  /** Peak resident memory so far, from the kernel's high-water mark (VmHWM), in MiB. */
  peakRssMiB(): number;
  /** CPU time (user + system) the process has used so far, in milliseconds. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** Reads a `Vm*` field of /proc/<pid>/status in MiB; undefined when the process is gone. */
export function procStatusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time a process has used (utime + stime from /proc/<pid>/stat), in milliseconds. Unlike
 * throughput, CPU per request barely moves when other work shares the machine.
 */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3, "state".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
  } catch {
    return NaN;
  }
}

/** Polls `check` every `intervalMs` until it returns true; throws at the deadline. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  deadlineMs: number,
  intervalMs = 100,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > deadlineMs) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function startServer(options: {
  name: string;
  args: string[];
  env: Record<string, string>;
  port: number;
  readyPath: string;
}): Promise<ServerProcess> {
  const child = spawn(process.execPath, options.args, {
    env: { ...process.env, ...options.env },
    // stdout is the request log: drained like a container runtime would, and counted.
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const server: ServerProcess = {
    name: options.name,
    child,
    baseUrl: `http://127.0.0.1:${options.port}`,
    logBytes: 0,
    peakRssMiB: () => procStatusMiB(child.pid!, 'VmHWM') ?? 0,
    cpuMs: () => procCpuMs(child.pid!),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  child.stdout.on('data', (chunk: Buffer) => {
    server.logBytes += chunk.length;
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${options.name} exited with ${code}`))),
  );
  exited.catch(() => undefined);
  await Promise.race([
    waitUntil(
      `${options.name} ready`,
      async () => (await fetch(`${server.baseUrl}${options.readyPath}`)).status === 200,
      60_000,
    ),
    exited,
  ]);
  return server;
}
