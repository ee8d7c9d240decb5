import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../backend/test/support/ports.ts';
import { GiveUp, waitFor } from '../../backend/test/support/wait.ts';
import { inspect, waitHealthy } from './docker.ts';
import { log, output, run } from './shell.ts';
import { repo, RUN_LABEL } from './stack.ts';
import { STAND_INS } from './stand-ins.ts';
import { scenario } from './steps.ts';

/**
 * The backend image on its own: what is inside it, and how it runs as Kubernetes will run it
 * (read-only root, numeric uid, no capabilities) and stops (a slow request survives `docker stop`).
 * Its database is a stand-in PostgreSQL container on a network of this test's own.
 */

const image = inject('backendImages').a;
const run_ = `tasks-e2e-image-${randomBytes(3).toString('hex')}`;
const label = `${RUN_LABEL}=${run_}`;
const network = `${run_}-net`;
const database = `${run_}-db`;
const bareContainer = `${run_}-bare`;
const password = randomBytes(18).toString('hex');
let barePort = 0;
const step = scenario();

async function api(path: string, init: RequestInit = {}, port = barePort) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: await response.text() };
}

async function removeEverything(): Promise<void> {
  const containers = await output('docker', ['ps', '-aq', '--filter', `label=${label}`]);
  if (containers)
    await run('docker', ['rm', '-fv', ...containers.split('\n')], { allowFailure: true });
  await run('docker', ['network', 'rm', network], { allowFailure: true });
}

describe('the backend image', () => {
  afterAll(removeEverything);

  step(
    '1. runs as a numeric non-root user and holds no dev dependencies, sources or .env',
    async () => {
      const config = await inspect<{
        User: string;
        Env: string[];
        Cmd: string[];
        Healthcheck?: { Test: string[] };
      }>(image, '{{json .Config}}');
      expect(config.User).toMatch(/^[1-9]\d*:[1-9]\d*$/);
      expect(config.User).toBe('1000:1000');
      expect(config.Env).toContain('NODE_ENV=production');
      expect(config.Cmd).toEqual(['node', 'backend/dist/main.js']);
      expect(config.Healthcheck?.Test.join(' ')).toContain('/api/health');
      expect(config.Healthcheck?.Test.join(' ')).not.toContain('curl');

      // What is inside, as the image's own node sees it.
      const listing = `
      const fs = require('node:fs'), path = require('node:path');
      const files = [], envFiles = [];
      (function walk(dir) {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const p = path.join(dir, e.name);
          if (/^\\.env/.test(e.name)) envFiles.push(p);
          if (e.isDirectory()) { if (p !== '/app/node_modules') walk(p); else walkModules(p); }
          else files.push(path.relative('/app', p));
        }
      })('/app');
      function walkModules(dir) {
        (function inner(d) {
          for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (/^\\.env$/.test(e.name)) envFiles.push(p);
            if (e.isDirectory()) inner(p);
          }
        })(dir);
      }
      const modules = fs.readdirSync('/app/node_modules').flatMap((n) =>
        n.startsWith('@') ? fs.readdirSync('/app/node_modules/' + n).map((m) => n + '/' + m) : [n]);
      console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), files, envFiles, modules }));`;
      const inside = JSON.parse(
        await output('docker', ['run', '--rm', '--entrypoint', 'node', image, '-e', listing]),
      ) as { uid: number; gid: number; files: string[]; envFiles: string[]; modules: string[] };
      const manifest = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
        devDependencies: Record<string, string>;
      };

      expect([inside.uid, inside.gid]).toEqual([1000, 1000]);
      expect(inside.modules.filter((name) => name in manifest.devDependencies)).toEqual([]);
      expect(inside.modules).not.toContain('typescript');
      expect(
        Object.keys(manifest.dependencies).filter((name) => !inside.modules.includes(name)),
      ).toEqual([]);
      expect(inside.envFiles).toEqual([]);
      expect(inside.files.filter((file) => /\.(ts|tsx|mts|cts)$/.test(file))).toEqual([]);
      expect(inside.files.filter((file) => /(^|\/)(src|test|e2e|k8s)\//.test(file))).toEqual([]);
      expect(inside.files.filter((file) => /\.(test|spec)\.js$/.test(file))).toEqual([]);
      expect(inside.files).toContain('package.json');
      expect(inside.files).toContain('backend/dist/main.js');
      expect(inside.files.some((file) => /^backend\/migrations\/.+\.sql$/.test(file))).toBe(true);
      expect(
        inside.files.filter((file) => !/^(package\.json|backend\/(dist|migrations)\/)/.test(file)),
      ).toEqual([]);

      const size = Number(
        await output('docker', ['image', 'inspect', '--format', '{{.Size}}', image]),
      );
      const base = Number(
        await output('docker', ['image', 'inspect', '--format', '{{.Size}}', STAND_INS.node]),
      );
      log(
        `image ${(size / 1e6).toFixed(1)} MB; the app adds ${((size - base) / 1e6).toFixed(1)} MB to its base`,
      );
    },
  );

  step('2. runs as Kubernetes will: read-only root, numeric uid, no capabilities', async () => {
    barePort = await freePort();
    await run('docker', ['network', 'create', '--label', label, network]);
    await run('docker', [
      'run',
      '-d',
      '--name',
      database,
      '--label',
      label,
      '--network',
      network,
      '--network-alias',
      'db',
      '--env',
      `POSTGRES_PASSWORD=${password}`,
      '--env',
      'POSTGRES_USER=tasks',
      '--env',
      'POSTGRES_DB=tasks',
      '--health-cmd',
      'pg_isready -h 127.0.0.1 -U tasks -d tasks',
      '--health-interval',
      '1s',
      STAND_INS.postgres,
    ]);
    await waitHealthy(database);
    await run('docker', [
      'create',
      '--name',
      bareContainer,
      '--label',
      label,
      '--read-only',
      '--tmpfs',
      '/tmp:rw,noexec,nosuid,size=64m',
      '--user',
      '1000:1000',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges:true',
      '--network',
      network,
      '--publish',
      `127.0.0.1:${barePort}:3000`,
      '--env',
      `DATABASE_URL=postgres://tasks:${password}@db:5432/tasks`,
      // Only here, for step 3: /api/_test/slow holds a request open.
      '--env',
      'ENABLE_TEST_ROUTES=true',
      image,
    ]);
    await run('docker', ['start', bareContainer]);
    await waitFor(
      'the bare container to be ready',
      async () => {
        const status = await inspect<string>(bareContainer, '{{json .State.Status}}');
        if (status !== 'running') throw new GiveUp(`the container is ${status}`);
        return (await api('/api/health/ready')).status === 200;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const check = `
      const fs = require('node:fs');
      const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
      const status = fs.readFileSync('/proc/1/status', 'utf8');
      const field = (name) => new RegExp('^' + name + ':\\\\s*(.*)$', 'm').exec(status)[1].trim();
      console.log(JSON.stringify({
        writeApp: attempt(() => fs.writeFileSync('/app/probe', 'x')),
        writeTmp: attempt(() => fs.writeFileSync('/tmp/probe', 'x')),
        uid: field('Uid'), capEff: field('CapEff'), noNewPrivs: field('NoNewPrivs'),
      }));`;
    const inside = JSON.parse(
      await output('docker', ['exec', bareContainer, 'node', '-e', check]),
    ) as Record<string, string>;
    expect(inside).toEqual({
      writeApp: 'EROFS',
      writeTmp: 'ok',
      uid: '1000\t1000\t1000\t1000',
      capEff: '0000000000000000',
      noNewPrivs: '1',
    });
  });

  step(
    '3. docker stop during a slow request: the request completes, exit code 0, the logs show the drain',
    async () => {
      const slowMs = 7000; // longer than the default 5 s shutdown delay: still in flight at close()
      let sent: () => void = () => undefined;
      const requestSent = new Promise<void>((resolve) => (sent = resolve));
      const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: barePort, path: `/api/_test/slow?ms=${slowMs}`, agent: false },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.setTimeout(60_000, () => req.destroy(new Error('the slow request timed out')));
        req.on('error', reject);
        req.on('finish', () => sent());
        req.end();
      });
      // The request is on the wire before the signal; the app keeps accepting during its shutdown
      // delay anyway, and answers only after that delay has run out, so it is in flight at close().
      await requestSent;
      const stopStarted = Date.now();
      await run('docker', ['stop', '--time', '30', bareContainer]);
      const stoppedAfterMs = Date.now() - stopStarted;
      const answered = await response;
      log(`docker stop returned after ${stoppedAfterMs} ms`);

      expect(answered.status).toBe(200);
      expect(JSON.parse(answered.body)).toEqual({ sleptMs: slowMs });
      expect(await inspect<number>(bareContainer, '{{json .State.ExitCode}}')).toBe(0);
      const logs = await run('docker', ['logs', bareContainer]);
      const messages = `${logs.stdout}\n${logs.stderr}`
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => (JSON.parse(line) as { msg?: string }).msg ?? '');
      const started = messages.findIndex((msg) => msg.startsWith('shutdown started'));
      const complete = messages.findIndex((msg) => msg.startsWith('shutdown complete'));
      expect(started).toBeGreaterThanOrEqual(0);
      expect(complete).toBeGreaterThan(started);
      log(
        `drain seen in the logs: ${messages.filter((msg) => msg.includes('shutdown')).join(' → ')}`,
      );
    },
  );

  it('4. everything the test created is removed', async () => {
    await removeEverything();
    expect(await output('docker', ['ps', '-aq', '--filter', `label=${label}`])).toBe('');
    expect(await output('docker', ['network', 'ls', '-q', '--filter', `label=${label}`])).toBe('');
  });
});
