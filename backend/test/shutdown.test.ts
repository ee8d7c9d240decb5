import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from './support/database.ts';
import { freePort } from './support/ports.ts';
import { backendEntry } from './support/processes.ts';

let child: ChildProcess;
let baseUrl: string;
const logs: { msg: string }[] = [];
let exited: Promise<number | null>;

beforeAll(async () => {
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, [...backendEntry.source], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      DATABASE_URL: await createTestDatabase(),
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: String(await freePort()),
      ENABLE_TEST_ROUTES: 'true',
      SHUTDOWN_DELAY_MS: '1500',
      SHUTDOWN_TIMEOUT_MS: '10000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      logs.push(JSON.parse(buffer.slice(0, i)) as { msg: string });
      buffer = buffer.slice(i + 1);
    }
  });
  exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 30_000;
  while (
    !(await fetch(`${baseUrl}/api/health/ready`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) throw new Error('server did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});
afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

describe('graceful shutdown of the real process', () => {
  it('when SIGTERM arrives during a slow request, then readiness turns 503, the request completes, and the process exits 0', async () => {
    const slow = fetch(`${baseUrl}/api/_test/slow?ms=2500`);
    // Let the request reach the server before the signal.
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));

    // During the shutdown delay the server still answers, but is not ready.
    const ready = await fetch(`${baseUrl}/api/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ shutdown: 'in progress' });
    expect((await fetch(`${baseUrl}/api/health/live`)).status).toBe(200);

    const response = await slow;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sleptMs: 2500 });

    expect(await exited).toBe(0);
    const messages = logs.map((l) => l.msg);
    expect(messages).toContain('shutdown started: readiness is now 503');
    expect(messages).toContain('shutdown: draining in-flight requests');
    expect(logs.find((l) => l.msg === 'shutdown complete')).toMatchObject({ drained: true });
    // After the drain nothing is accepted any more.
    await expect(fetch(`${baseUrl}/api/health/live`)).rejects.toThrow();
  });
});
