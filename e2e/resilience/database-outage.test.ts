import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { percentile } from '../../backend/test/support/stats.ts';
import { sleep, timeUntil, waitFor } from '../../backend/test/support/wait.ts';
import {
  createTask,
  poolGauges,
  poolSettles,
  registerUser,
  useBackendOnOwnPostgres,
} from './support/backend.ts';
import { report, startLoad, tally } from './support/load.ts';

// Kubernetes' smallest probe period; readiness is cached for 1 s, so two periods bound detection.
const probePeriodMs = 1000;
const connectTimeoutMs = 1000;
const outageMs = 10_000;

const setup = useBackendOnOwnPostgres('outage', {
  DATABASE_CONNECT_TIMEOUT_MS: String(connectTimeoutMs),
});

interface Probe {
  at: number;
  path: string;
  status: number;
}

/** Probes liveness and readiness every period, like a kubelet, and records every answer. */
function startProber(baseUrl: string) {
  const probes: Probe[] = [];
  const one = async (path: string) => {
    const at = Date.now();
    const status = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(probePeriodMs) })
      .then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      })
      .catch(() => 0);
    probes.push({ at, path, status });
  };
  const timer = setInterval(() => {
    void one('/api/health/ready');
    void one('/api/health/live');
  }, probePeriodMs);
  /** Milliseconds until a readiness probe sent at `since` or later answered `status`. */
  const readinessAnswers = (status: number, since: number, timeoutMs: number) =>
    timeUntil(
      `readiness ${status}`,
      () =>
        probes.some((p) => p.path === '/api/health/ready' && p.at >= since && p.status === status),
      { timeoutMs, intervalMs: 20 },
    );
  return { probes, readinessAnswers, stop: () => clearInterval(timer) };
}

describe('database outage under load', () => {
  it('when PostgreSQL stops for 10 s, then readiness fails fast, liveness holds, requests get quick 503s, nothing leaks, it recovers by itself and no acknowledged write is lost', async () => {
    const { db, backend } = setup;
    const token = await registerUser(backend.baseUrl);
    const taskId = await createTask(backend.baseUrl, token, 'before the outage');
    const auth = { authorization: `Bearer ${token}` };
    const prober = startProber(backend.baseUrl);
    let paused = false;
    const load = startLoad({
      baseUrl: backend.baseUrl,
      concurrency: 6,
      maxDurationMs: 60_000,
      requestTimeoutMs: 15_000,
      next: (n) =>
        n % 2 === 0
          ? {
              kind: 'create',
              method: 'POST',
              path: '/api/v1/tasks',
              headers: auth,
              body: '{"title":"under load"}',
            }
          : { kind: 'get', method: 'GET', path: `/api/v1/tasks/${taskId}`, headers: auth },
    });
    try {
      await waitFor('load under way', () => load.outcomes.length > 200, {
        timeoutMs: 10_000,
        intervalMs: 20,
      });

      await db.pause();
      paused = true;
      const down = Date.now();
      const readyFailedMs = await prober.readinessAnswers(503, down, 10_000);
      await sleep(outageMs - (Date.now() - down));
      const resuming = Date.now();
      await db.resume();
      paused = false;
      const up = Date.now();
      const readyAgainMs = await prober.readinessAnswers(200, up, 15_000);
      const servingAgainMs = await timeUntil(
        'requests succeed again',
        () => load.outcomes.some((o) => o.status === 200 && o.startedAt >= up),
        { timeoutMs: 15_000, intervalMs: 20 },
      );
      // A few more seconds of load after recovery.
      await sleep(2000);
      const outcomes = await load.stop();
      prober.stop();

      // Requests that started while the database was down (PostgreSQL accepts again during resume()).
      const during = outcomes.filter((o) => o.startedAt >= down && o.startedAt < resuming);
      const outageStatuses = tally(during);
      const unexpected = outcomes.filter(
        (o) =>
          ![200, 201, 503].includes(o.status) ||
          (o.status === 503 && !o.contentType.startsWith('application/problem+json')),
      );
      const acknowledged = outcomes
        .filter((o) => o.kind === 'create' && o.status === 201)
        .map((o) => (JSON.parse(o.body) as { id: string }).id);

      // No acknowledged write lost: every 201 is in the table.
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const { rows } = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM tasks WHERE id = ANY($1::uuid[])',
        [acknowledged],
      );
      await client.end();

      // No leaked pool clients: once the load is gone, nothing is checked out or waiting.
      const settleMs = await poolSettles(backend);
      const pool = await poolGauges(backend);
      const readiness = prober.probes.filter((p) => p.path === '/api/health/ready');
      const liveness = prober.probes.filter((p) => p.path === '/api/health/live');

      report('database outage', {
        requests: outcomes.length,
        duringOutage: during.length,
        outageStatuses,
        unexpected: unexpected.length,
        outageP99Ms: Math.round(
          percentile(
            during.map((o) => o.ms),
            0.99,
          ),
        ),
        outageMaxMs: Math.round(Math.max(0, ...during.map((o) => o.ms))),
        outageMs: resuming - down,
        readinessFailedAfterMs: readyFailedMs,
        readyAgainAfterResumeMs: readyAgainMs,
        servingAgainAfterResumeMs: servingAgainMs,
        livenessProbes: liveness.length,
        livenessFailures: liveness.filter((p) => p.status !== 200).length,
        acknowledgedWrites: acknowledged.length,
        writesFound: Number(rows[0]!.n),
        poolAfter: pool,
        poolSettledMs: settleMs,
      });

      expect(readyFailedMs).toBeLessThanOrEqual(2 * probePeriodMs + 250);
      expect(readiness.some((p) => p.status === 503)).toBe(true);
      expect(liveness.filter((p) => p.status !== 200)).toEqual([]);
      expect(during.length).toBeGreaterThan(20);
      // Fail fast: every request during the outage is answered, none hangs past the connect timeout.
      expect(during.filter((o) => o.status === 0)).toEqual([]);
      expect(Math.max(...during.map((o) => o.ms))).toBeLessThan(connectTimeoutMs + 1000);
      expect(during.filter((o) => o.status === 503).length).toBeGreaterThan(0);
      expect(tally(unexpected)).toEqual({});
      expect(readyAgainMs).toBeLessThan(5000);
      expect(servingAgainMs).toBeLessThan(5000);
      expect(Number(rows[0]!.n)).toBe(acknowledged.length);
      expect(pool.waiting).toBe(0);
      expect(pool.total).toBeLessThanOrEqual(pool.max);
      expect(backend.running()).toBe(true);
    } finally {
      prober.stop();
      await load.stop();
      if (paused) await db.resume();
    }
  });
});
