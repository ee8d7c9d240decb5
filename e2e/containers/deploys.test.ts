import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { percentile } from '../../backend/test/support/stats.ts';
import {
  runLoad,
  seedAccount,
  type Account,
  type EdgeClient,
  type LoadReport,
} from './edge-client.ts';
import { VERSIONS } from './images.ts';
import { log, run } from './shell.ts';
import { REPLICAS, repo, Stack } from './stack.ts';
import { scenario } from './steps.ts';

/**
 * Issue 11's proof: `vps/deploy.sh` moves both replicas to a new image, one at a time, under
 * constant HTTPS load through Caddy (reads, lists, idempotent creates, PATCHes), and not one request
 * fails. The same for a rollback, and for a release that never becomes healthy: the script exits
 * non-zero and the previous version keeps serving.
 */

const images = inject('backendImages');
const step = scenario();
const CONNECTIONS = 6;
let stack: Stack;
let edge: EdgeClient;
const accounts: Account[] = [];

interface DeployRun {
  code: number;
  output: string;
  seconds: number;
  load: LoadReport;
}

/** Runs the deploy script as an operator would, with load running the whole time. */
async function deployUnderLoad(args: string[]): Promise<DeployRun> {
  const stop = new AbortController();
  const load = runLoad(edge, accounts, { connections: CONNECTIONS, stop: stop.signal });
  const started = Date.now();
  const result = await run('sh', [join(repo, 'vps/deploy.sh'), ...args], {
    env: stack.compose.environment(),
    allowFailure: true,
    timeoutMs: 600_000,
  }).finally(() => stop.abort());
  const seconds = (Date.now() - started) / 1000;
  const report = await load;
  log(
    `deploy.sh ${args.join(' ')}: exit ${result.code} after ${seconds.toFixed(1)} s; ` +
      `${report.sent} requests (${JSON.stringify(report.byKind)}), ${report.failed} failed, ` +
      `p50 ${percentile(report.latenciesMs, 0.5).toFixed(0)} ms, p99 ${percentile(report.latenciesMs, 0.99).toFixed(0)} ms, ` +
      `longest ${report.longestMs.toFixed(0)} ms`,
  );
  return { code: result.code, output: result.stderr + result.stdout, seconds, load: report };
}

/** Which versions answer through Caddy: enough requests to reach both replicas many times. */
async function servedVersions(): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const health = await edge.request('GET', '/api/health/live');
    expect(health.status).toBe(200);
    seen.add(health.body.version);
  }
  return [...seen].sort();
}

/** The image and health of each replica, as Docker sees them. */
async function replicas(): Promise<string[]> {
  const states = [];
  for (const replica of REPLICAS) {
    const id = await stack.compose.containerId(replica);
    const state = await run('docker', [
      'inspect',
      '--format',
      '{{.Config.Image}} {{.State.Health.Status}}',
      id,
    ]);
    states.push(`${replica} ${state.stdout.trim()}`);
  }
  return states;
}

describe('vps/deploy.sh: redeploys behind Caddy that drop no request', () => {
  beforeAll(async () => {
    stack = await Stack.create('deploys', images.a);
  });
  afterAll(async () => {
    await stack?.remove();
  });

  step('1. the stack serves release A through HTTPS', async () => {
    await stack.up();
    edge = await stack.edge();
    for (let i = 0; i < 2; i++) {
      accounts.push(await seedAccount(edge, `deploy-${i}-${randomUUID()}@example.com`, 20));
    }
    expect(await servedVersions()).toEqual([VERSIONS.a]);
  });

  step('2. deploy A → B under constant load: 0 failed requests, B served at the end', async () => {
    const deploy = await deployUnderLoad([images.b]);
    expect(deploy.code, deploy.output).toBe(0);
    expect(deploy.load.failures).toEqual([]);
    expect(deploy.load.failed).toBe(0);
    expect(deploy.load.sent).toBeGreaterThan(100);
    expect(await servedVersions()).toEqual([VERSIONS.b]);
    expect(await replicas()).toEqual(REPLICAS.map((r) => `${r} ${images.b} healthy`));
    // What `docker compose up -d` runs from now on, and the order the script followed.
    expect(await stack.env('BACKEND_IMAGE')).toBe(images.b);
    expect(deploy.output).toMatch(
      /1\/3 migrations[\s\S]*2\/3 replacing backend-a[\s\S]*3\/3 replacing backend-b/,
    );
  });

  step('3. rollback (B → A) under constant load: 0 failed requests, A served again', async () => {
    const rollback = await deployUnderLoad(['--rollback']);
    expect(rollback.code, rollback.output).toBe(0);
    expect(rollback.load.failures).toEqual([]);
    expect(rollback.load.failed).toBe(0);
    expect(await servedVersions()).toEqual([VERSIONS.a]);
    expect(await stack.env('BACKEND_IMAGE')).toBe(images.a);
  });

  step(
    '4. a release that never becomes healthy: the script exits non-zero, A keeps serving, 0 failed requests',
    async () => {
      const broken = await deployUnderLoad([images.broken]);
      expect(broken.code).not.toBe(0);
      expect(broken.output).toMatch(/never became healthy on backend-a/);
      expect(broken.load.failures).toEqual([]);
      expect(broken.load.failed).toBe(0);
      expect(await servedVersions()).toEqual([VERSIONS.a]);
      expect(await replicas()).toEqual(REPLICAS.map((r) => `${r} ${images.a} healthy`));
      expect(await stack.env('BACKEND_IMAGE')).toBe(images.a);
      // The failed deploy is not history: a rollback still goes back to B, the release before A.
      const history = await readFile(join(stack.workDir, '.deploy-history'), 'utf8');
      expect(
        history
          .trim()
          .split('\n')
          .map((line) => line.split(' ')[1]),
      ).toEqual([images.a, images.b, images.a]);
    },
  );

  it('5. everything the stack created is removed', async () => {
    await stack.remove();
    expect(await stack.leftovers()).toEqual([]);
  });
});
