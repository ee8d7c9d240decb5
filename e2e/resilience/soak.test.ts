import { describe, expect, it } from 'vitest';
import type { BackendProcess } from '../../backend/test/support/processes.ts';
import { median, percentile } from '../../backend/test/support/stats.ts';
import {
  createTask,
  poolGauges,
  poolSettles,
  registerUser,
  scrapeMetrics,
  useBackendOnOwnPostgres,
} from './support/backend.ts';
import { report, startLoad, tally, type LoadRequest } from './support/load.ts';

// 60 s in CI; SOAK_SECONDS=1800 (or more) for a real soak.
const soakSeconds = Number(process.env['SOAK_SECONDS'] ?? 60);
const warmupSeconds = 5;
const concurrency = 8;

const setup = useBackendOnOwnPostgres('soak');

async function heapUsedMiB(backend: BackendProcess): Promise<number> {
  const m = await scrapeMetrics(backend, ['nodejs_heap_size_used_bytes']);
  return m.nodejs_heap_size_used_bytes / 2 ** 20;
}

describe('soak', () => {
  it(`when mixed traffic runs for ${soakSeconds} s, then nothing fails and memory and the pool return to their baseline`, async () => {
    const { backend } = setup;
    const users = await Promise.all([1, 2, 3].map(() => registerUser(backend.baseUrl)));
    const tasks = await Promise.all(
      users.map((token) => createTask(backend.baseUrl, token, 'soak')),
    );
    const mix = (n: number): LoadRequest => {
      const i = n % users.length;
      const auth = { authorization: `Bearer ${users[i]!}` };
      const task = `/api/v1/tasks/${tasks[i]!}`;
      switch (n % 10) {
        case 0:
        case 1:
        case 2:
        case 3:
          return { kind: 'get', method: 'GET', path: task, headers: auth };
        case 4:
        case 5:
          return { kind: 'list', method: 'GET', path: '/api/v1/tasks?limit=20', headers: auth };
        case 6:
          return {
            kind: 'create',
            method: 'POST',
            path: '/api/v1/tasks',
            headers: auth,
            body: '{"title":"soak"}',
          };
        case 7:
          return {
            kind: 'patch',
            method: 'PATCH',
            path: task,
            headers: auth,
            body: `{"notes":"n${n}"}`,
          };
        case 8:
          return { kind: 'ready', method: 'GET', path: '/api/health/ready' };
        default:
          return {
            kind: 'create-idempotent',
            method: 'POST',
            path: '/api/v1/tasks',
            headers: { ...auth, 'idempotency-key': `soak-${n}` },
            body: '{"title":"soak, idempotent"}',
          };
      }
    };
    const expected: Record<string, number> = {
      get: 200,
      list: 200,
      create: 201,
      patch: 200,
      ready: 200,
      'create-idempotent': 201,
    };

    // Warm up (JIT, heap, pool) at the same load, then take the baseline at rest.
    await startLoad({
      baseUrl: backend.baseUrl,
      concurrency,
      maxDurationMs: warmupSeconds * 1000,
      next: mix,
    }).done;
    await poolSettles(backend);
    const baseline = {
      rssMiB: backend.memory().rssMiB,
      heapMiB: await heapUsedMiB(backend),
      pool: await poolGauges(backend),
    };

    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(backend.memory().rssMiB), 1000);
    const load = startLoad({
      baseUrl: backend.baseUrl,
      concurrency,
      maxDurationMs: soakSeconds * 1000,
      // Bounded in count as well as time: a generous cap far above what 2 cores can serve.
      maxRequests: soakSeconds * 20_000,
      keepBodyBytes: 0,
      next: (n) => mix(n + 100_000),
    });
    const outcomes = await load.done;
    clearInterval(sampler);

    const settledMs = await poolSettles(backend);
    const after = {
      rssMiB: backend.memory().rssMiB,
      heapMiB: await heapUsedMiB(backend),
      pool: await poolGauges(backend),
    };
    const failed = outcomes.filter((o) => o.status !== expected[o.kind]);
    const quarter = Math.max(1, Math.floor(samples.length / 4));
    // "Back to baseline", generously: memory within 64 MiB or half again of the warm baseline.
    const rssAllowanceMiB = Math.max(64, baseline.rssMiB * 0.5);

    report('soak', {
      seconds: soakSeconds,
      requests: outcomes.length,
      requestsPerSecond: Math.round(outcomes.length / soakSeconds),
      failed: failed.length,
      byOutcome: tally(outcomes),
      p99Ms: Math.round(
        percentile(
          outcomes.map((o) => o.ms),
          0.99,
        ),
      ),
      rssBaselineMiB: Math.round(baseline.rssMiB),
      rssFirstQuarterMiB: Math.round(median(samples.slice(0, quarter))),
      rssLastQuarterMiB: Math.round(median(samples.slice(-quarter))),
      rssAfterMiB: Math.round(after.rssMiB),
      rssPeakMiB: Math.round(backend.memory().peakMiB),
      rssAllowanceMiB: Math.round(rssAllowanceMiB),
      heapBaselineMiB: Math.round(baseline.heapMiB),
      heapAfterMiB: Math.round(after.heapMiB),
      poolBaseline: baseline.pool,
      poolAfter: after.pool,
      poolSettledMs: settledMs,
    });

    expect(tally(failed)).toEqual({});
    expect(outcomes.length).toBeGreaterThan(soakSeconds * 50);
    expect(after.pool.inUse).toBe(0);
    expect(after.pool.waiting).toBe(0);
    expect(after.pool.total).toBeLessThanOrEqual(after.pool.max);
    expect(after.rssMiB).toBeLessThan(baseline.rssMiB + rssAllowanceMiB);
    expect(backend.running()).toBe(true);
  });
});
