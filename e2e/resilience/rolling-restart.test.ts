import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type BackendProcess } from '../../backend/test/support/processes.ts';
import { percentile } from '../../backend/test/support/stats.ts';
import { waitFor } from '../../backend/test/support/wait.ts';
import { createTask, registerUser, useOwnPostgres } from './support/backend.ts';
import { startLoad, tally, report } from './support/load.ts';
import { startLoadBalancer, type LoadBalancer } from './support/load-balancer.ts';

const probePeriodMs = 500;
// Longer than it takes the balancer to see readiness fail (one probe period plus the probe).
const shutdownDelayMs = 2000;
const restarts = 3;

const postgres = useOwnPostgres();
let balancer: LoadBalancer;
const started: BackendProcess[] = [];

const instanceEnv = () => ({
  DATABASE_URL: postgres.db.url,
  SHUTDOWN_DELAY_MS: String(shutdownDelayMs),
  SHUTDOWN_TIMEOUT_MS: '10000',
});

beforeAll(async () => {
  balancer = await startLoadBalancer({ probePeriodMs });
});
afterAll(async () => {
  for (const backend of started) await backend.stop(5000);
  await balancer?.close();
});

describe('rolling restart behind a readiness-aware load balancer', () => {
  it(`when ${restarts} instances are replaced one by one under steady load, then every request succeeds`, async () => {
    const launch = async (n: number) => {
      const backend = await startBackend(`instance-${n}`, instanceEnv());
      started.push(backend);
      balancer.add(backend.baseUrl);
      await waitFor(
        `balancer routes to instance-${n}`,
        () => balancer.readyUpstreams().includes(backend.baseUrl),
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      return backend;
    };
    const live = [await launch(1), await launch(2)];
    const token = await registerUser(balancer.url);
    const taskId = await createTask(balancer.url, token, 'read under load');

    const auth = { authorization: `Bearer ${token}` };
    const load = startLoad({
      baseUrl: balancer.url,
      concurrency: 8,
      maxDurationMs: 90_000,
      next: (n) =>
        n % 4 === 3
          ? {
              kind: 'create',
              method: 'POST',
              path: '/api/v1/tasks',
              headers: auth,
              body: '{"title":"during rollout"}',
            }
          : n % 4 === 2
            ? { kind: 'list', method: 'GET', path: '/api/v1/tasks?limit=10', headers: auth }
            : { kind: 'get', method: 'GET', path: `/api/v1/tasks/${taskId}`, headers: auth },
    });
    await waitFor('load under way', () => load.outcomes.length > 200, {
      timeoutMs: 10_000,
      intervalMs: 20,
    });

    const exits: (number | null)[] = [];
    const drainMs: number[] = [];
    for (let i = 0; i < restarts; i++) {
      live.push(await launch(3 + i));
      const old = live.shift()!;
      const signalled = Date.now();
      const code = await old.stop();
      drainMs.push(Date.now() - signalled);
      exits.push(code);
      balancer.remove(old.baseUrl);
    }
    // Steady load on the final pair too, so the last replacement is not the last thing measured.
    const before = load.outcomes.length;
    await waitFor('load after the rollout', () => load.outcomes.length > before + 200, {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const outcomes = await load.stop();

    const failed = outcomes.filter((o) => o.status !== (o.kind === 'create' ? 201 : 200));
    report('rolling restart', {
      requests: outcomes.length,
      failed: failed.length,
      restarts,
      byOutcome: tally(outcomes),
      p99Ms: Math.round(
        percentile(
          outcomes.map((o) => o.ms),
          0.99,
        ),
      ),
      maxMs: Math.round(Math.max(...outcomes.map((o) => o.ms))),
      stopToExitMs: drainMs,
      balancerFailures: balancer.failures.length,
    });
    expect(exits).toEqual(Array(restarts).fill(0));
    expect(balancer.failures).toEqual([]);
    expect(tally(failed)).toEqual({});
    expect(outcomes.length).toBeGreaterThan(1000);
  });
});
