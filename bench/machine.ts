import { readdirSync, readFileSync } from 'node:fs';
import { clockTicksPerSecond, procCpuMs } from '../backend/test/support/processes.ts';

/**
 * What else the machine was doing during a measurement. The box is shared: a measurement is
 * worth only as much as the quiet it had, so each one records the CPU the whole machine spent
 * (/proc/stat) and how much of it was neither the target server, nor this harness (load
 * generator and pgbench), nor the benchmark's PostgreSQL: other people's work.
 */

export interface CpuSnapshot {
  at: number;
  /** CPU time the whole machine has spent busy (all cores), ms. */
  machineMs: number;
  /** This process and its waited-for children (pgbench), ms. */
  harnessMs: number;
  /** The benchmark's PostgreSQL: the postmaster and its children, ms. */
  postgresMs: number;
}

function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user).
  const [user, nice, system, , , irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = [user, nice, system, irq, softirq, steal].reduce<number>((s, n) => s + (n ?? 0), 0);
  return (busy * 1000) / clockTicksPerSecond;
}

/**
 * The postmaster and every process it started: those still running, and (in its own children
 * times) those that have exited, such as a pgbench run's connections.
 */
function processTreeMs(rootPid: number): number {
  let total = procCpuMs(rootPid, { children: true });
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === rootPid) total += procCpuMs(Number(name));
    } catch {
      // It exited while we looked.
    }
  }
  return total;
}

export function cpuSnapshot(postgresPid: number | undefined): CpuSnapshot {
  return {
    at: performance.now(),
    machineMs: machineBusyMs(),
    harnessMs: procCpuMs(process.pid, { children: true }),
    postgresMs: postgresPid === undefined ? 0 : processTreeMs(postgresPid),
  };
}

export interface MachineLoad {
  /** Cores busy on the whole machine, on average over the measurement. */
  machineBusyCores: number;
  /** Of which neither the server measured, the harness, nor the benchmark's PostgreSQL. */
  otherCores: number;
  /** The 1-minute load average at the end. */
  loadAverage1m: number;
}

/** The machine's load between two snapshots, `serverMs` of it the measured server's. */
export function machineLoad(
  before: CpuSnapshot,
  after: CpuSnapshot,
  serverMs: number,
): MachineLoad {
  const seconds = Math.max(1e-3, (after.at - before.at) / 1000);
  const machine = after.machineMs - before.machineMs;
  const ours =
    (Number.isFinite(serverMs) ? serverMs : 0) +
    (after.harnessMs - before.harnessMs) +
    (after.postgresMs - before.postgresMs);
  return {
    machineBusyCores: machine / 1000 / seconds,
    // Clock ticks are coarse (10 ms): never report a negative share.
    otherCores: Math.max(0, machine - ours) / 1000 / seconds,
    loadAverage1m: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
  };
}
