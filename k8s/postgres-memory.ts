/**
 * PostgreSQL's memory settings, derived from its container's memory limit and checked against it,
 * like the connection budget: past the limit the kernel OOM-kills the postmaster's children and
 * PostgreSQL restarts every connection. The worst moment is every connection running a query that
 * uses its whole work_mem while autovacuum works.
 *
 *   shared_buffers + (1 + autovacuum_max_workers) x maintenance_work_mem
 *     + max_connections x (per-connection memory + hash_mem_multiplier x work_mem)
 *     + other processes and shared memory   <=   memory limit
 */

/**
 * What one idle backend process holds privately, rounded up. Measured on PostgreSQL 16.14 (40
 * backends after catalog-heavy queries: 1.7 MiB private on average, 2.2 MiB at most, from
 * /proc/<pid>/smaps_rollup), plus page tables for touching shared_buffers.
 */
export const PER_CONNECTION_MIB = 3;
/** Background processes (checkpointer, WAL writer, autovacuum launcher...) and wal_buffers. */
export const OTHER_MIB = 32;
/** PostgreSQL's default; each autovacuum worker may use maintenance_work_mem. */
export const AUTOVACUUM_MAX_WORKERS = 3;
/** PostgreSQL 15+'s default: a hash table may use twice work_mem. */
export const HASH_MEM_MULTIPLIER = 2;

export interface PostgresMemorySettings {
  readonly sharedBuffersMiB: number;
  readonly workMemMiB: number;
  readonly maintenanceWorkMemMiB: number;
  readonly effectiveCacheSizeMiB: number;
}

/**
 * The settings for a memory limit: a quarter for shared_buffers (PostgreSQL's documented starting
 * point), a thirty-second for maintenance_work_mem, and work_mem from what is left for
 * max_connections. Overrides replace a derived value (and are checked the same way).
 */
export function derivePostgresMemory(
  memoryLimitMiB: number,
  maxConnections: number,
  overrides: Partial<PostgresMemorySettings> = {},
): PostgresMemorySettings {
  const sharedBuffersMiB = overrides.sharedBuffersMiB ?? Math.floor(memoryLimitMiB / 4);
  const maintenanceWorkMemMiB =
    overrides.maintenanceWorkMemMiB ?? Math.max(16, Math.floor(memoryLimitMiB / 32));
  const left =
    memoryLimitMiB -
    sharedBuffersMiB -
    (1 + AUTOVACUUM_MAX_WORKERS) * maintenanceWorkMemMiB -
    maxConnections * PER_CONNECTION_MIB -
    OTHER_MIB;
  const workMemMiB =
    overrides.workMemMiB ?? Math.max(0, Math.floor(left / (maxConnections * HASH_MEM_MULTIPLIER)));
  return {
    sharedBuffersMiB,
    workMemMiB,
    maintenanceWorkMemMiB,
    effectiveCacheSizeMiB: overrides.effectiveCacheSizeMiB ?? Math.floor(memoryLimitMiB / 2),
  };
}

/** The `-c name=value` arguments for the postgres server (PostgreSQL's MB are MiB). */
export function postgresMemoryArgs(settings: PostgresMemorySettings): string[] {
  return [
    ['shared_buffers', settings.sharedBuffersMiB],
    ['work_mem', settings.workMemMiB],
    ['maintenance_work_mem', settings.maintenanceWorkMemMiB],
    ['effective_cache_size', settings.effectiveCacheSizeMiB],
  ].flatMap(([name, mib]) => ['-c', `${name}=${mib}MB`]);
}

/** Returns an explanation when the settings do not fit the limit, undefined when they do. */
export function postgresMemoryProblem(input: {
  readonly memoryLimitMiB: number;
  readonly maxConnections: number;
  readonly settings: Omit<PostgresMemorySettings, 'effectiveCacheSizeMiB'>;
}): string | undefined {
  const { memoryLimitMiB, maxConnections, settings } = input;
  const { sharedBuffersMiB, workMemMiB, maintenanceWorkMemMiB } = settings;
  const needed =
    sharedBuffersMiB +
    (1 + AUTOVACUUM_MAX_WORKERS) * maintenanceWorkMemMiB +
    maxConnections * (PER_CONNECTION_MIB + HASH_MEM_MULTIPLIER * workMemMiB) +
    OTHER_MIB;
  const arithmetic =
    `shared_buffers ${sharedBuffersMiB} + (1 + ${AUTOVACUUM_MAX_WORKERS} autovacuum workers) x maintenance_work_mem ${maintenanceWorkMemMiB}` +
    ` + max_connections ${maxConnections} x (${PER_CONNECTION_MIB} per connection + ${HASH_MEM_MULTIPLIER} x work_mem ${workMemMiB})` +
    ` + ${OTHER_MIB} other = ${needed} MiB`;
  if (workMemMiB < 1) {
    const fixed = needed - maxConnections * HASH_MEM_MULTIPLIER * workMemMiB;
    return (
      `PostgreSQL memory: a ${memoryLimitMiB} MiB limit leaves less than 1 MiB of work_mem for each of ` +
      `max_connections ${maxConnections} (shared_buffers ${sharedBuffersMiB} + (1 + ${AUTOVACUUM_MAX_WORKERS} autovacuum workers) x maintenance_work_mem ${maintenanceWorkMemMiB}` +
      ` + max_connections ${maxConnections} x ${PER_CONNECTION_MIB} per connection + ${OTHER_MIB} other = ${fixed} MiB before any work_mem). ` +
      'Raise database.resources.memoryLimitMiB or lower database.maxConnections.'
    );
  }
  if (needed <= memoryLimitMiB) return undefined;
  return (
    `PostgreSQL memory budget exceeded: ${arithmetic}, above the container's memory limit ${memoryLimitMiB} MiB. ` +
    'Raise database.resources.memoryLimitMiB, or lower database.maxConnections or the memory settings.'
  );
}
