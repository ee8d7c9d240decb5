import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from './support/database.ts';
import { startBackend, type BackendProcess } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

let backend: BackendProcess;

beforeAll(async () => {
  backend = await startBackend('shutdown', {
    DATABASE_URL: await createTestDatabase(),
    ENABLE_TEST_ROUTES: 'true',
    SHUTDOWN_DELAY_MS: '1500',
    SHUTDOWN_TIMEOUT_MS: '10000',
  });
});
afterAll(() => backend.stop(1000));

/** The requests being served right now, from the process's own gauge. */
const inFlight = async (): Promise<number> => {
  const text = await (await fetch(backend.metricsUrl)).text();
  return Number(/^http_requests_in_flight (\d+)$/m.exec(text)?.[1]);
};

describe('graceful shutdown of the real process', () => {
  it('when SIGTERM arrives during a slow request, then readiness turns 503, the request completes, and the process exits 0', async () => {
    const slow = fetch(`${backend.baseUrl}/api/_test/slow?ms=2500`);
    await waitFor('the slow request to be in flight', async () => (await inFlight()) === 1, {
      timeoutMs: 5000,
    });
    backend.child.kill('SIGTERM');

    // During the shutdown delay the server still answers, but is not ready.
    const ready = await waitFor(
      'readiness 503',
      async () => {
        const res = await fetch(`${backend.baseUrl}/api/health/ready`);
        return res.status === 503 ? res : undefined;
      },
      { timeoutMs: 1000, intervalMs: 20 },
    );
    expect(await ready.json()).toMatchObject({ shutdown: 'in progress' });
    expect((await fetch(`${backend.baseUrl}/api/health/live`)).status).toBe(200);

    const response = await slow;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sleptMs: 2500 });

    expect(await backend.exited).toBe(0);
    const messages = backend.logs().map((line) => line['msg']);
    expect(messages).toContain('shutdown started: readiness is now 503');
    expect(messages).toContain('shutdown: draining in-flight requests');
    expect(backend.logs().find((l) => l['msg'] === 'shutdown complete')).toMatchObject({
      drained: true,
    });
    // After the drain nothing is accepted any more.
    await expect(fetch(`${backend.baseUrl}/api/health/live`)).rejects.toThrow();
  });
});

describe('the log on the way out', () => {
  it('when an uncaught exception ends the process, then its last lines are written: the request before it and the fatal error', async () => {
    const crashing = await startBackend('crash', {
      DATABASE_URL: await createTestDatabase(),
      ENABLE_TEST_ROUTES: 'true',
    });
    try {
      const res = await fetch(`${crashing.baseUrl}/api/_test/crash`, {
        method: 'POST',
        headers: { 'x-request-id': 'the-last-request' },
      });
      expect(res.status).toBe(202);
      expect(await crashing.exited).toBe(1);
      const logs = crashing.logs();
      expect(logs.find((l) => l['msg'] === 'crashing on purpose')).toBeDefined();
      expect(logs.find((l) => l['msg'] === 'request completed')).toMatchObject({
        req: { id: 'the-last-request' },
        res: { statusCode: 202 },
      });
      expect(logs.at(-1)).toMatchObject({
        level: 'fatal',
        msg: 'uncaught exception',
        err: { message: 'deliberate crash' },
      });
    } finally {
      await crashing.stop(1000);
    }
  });
});
