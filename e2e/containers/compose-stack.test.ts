import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { composeCommand, ensureDaemon, ensureTools, type DockerDaemon } from './docker-host.ts';
import { ComposeProject, freePort, inspect, tcpProbe, waitHealthy } from './docker.ts';
import { GiveUp, log, output, run, waitFor } from './shell.ts';
import { ensureStandIns, NODE_IMAGE } from './stand-ins.ts';

/**
 * The promise of the README: on a VPS with Docker, `cp .env.example .env`, fill in the secrets,
 * `docker compose up -d`, and the API is live with PostgreSQL behind it, the database unreachable
 * from outside and the data surviving restarts. Proven here with the unchanged Dockerfile and
 * docker-compose.yml on a real engine. The steps run in order and share the stack.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
/** Kept between runs as the build cache; a run replaces the previous one. */
const IMAGE = 'tasks-backend:e2e';
const runId = randomBytes(3).toString('hex');
const project = `tasks-e2e-${runId}`;
/** The backend started as Kubernetes will run it (step 6), outside compose. */
const bareContainer = `${project}-bare`;
const ownLabel = `tasks-backend.e2e.run=${project}`;

let workDir = '';
let daemon: DockerDaemon | undefined;
let compose: ComposeProject | undefined;
let postgresPassword = '';
let apiPort = 0;
let metricsPort = 0;
let barePort = 0;
let hostPostgresBefore = '';
let account: { token: string };
let task: Record<string, unknown> & { id: string };
let failedStep: string | undefined;

/** A step of the scenario: skipped once an earlier one failed, since each builds on the last. */
function step(name: string, body: () => Promise<void>, timeoutMs?: number) {
  it(
    name,
    async (context: TestContext) => {
      if (failedStep) context.skip(`an earlier step failed: ${failedStep}`);
      try {
        await body();
      } catch (error) {
        failedStep = name;
        throw error;
      }
    },
    timeoutMs,
  );
}

async function api(path: string, init: RequestInit = {}, port = apiPort) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    headers: { 'content-type': 'application/json', ...init.headers },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const body: unknown = response.headers.get('content-type')?.includes('json')
    ? JSON.parse(text)
    : text;
  return { status: response.status, headers: response.headers, body };
}

/** The generated .env: .env.example as a user would fill it in, with ports free on this host. */
async function writeEnvFile(file: string): Promise<void> {
  const overrides: Record<string, string> = {
    POSTGRES_PASSWORD: postgresPassword,
    API_BIND_ADDRESS: '127.0.0.1',
    API_HOST_PORT: String(apiPort),
    METRICS_HOST_PORT: String(metricsPort),
    BACKEND_IMAGE: IMAGE,
  };
  const template = await readFile(join(repo, '.env.example'), 'utf8');
  const filled = template.replace(/^([A-Z][A-Z0-9_]*)=(.*)$/gm, (line, key: string) =>
    key in overrides ? `${key}=${overrides[key]}` : line,
  );
  await writeFile(file, filled, { mode: 0o600 });
}

/** Image id of a tag, or undefined. */
async function imageId(tag: string): Promise<string | undefined> {
  const result = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], {
    allowFailure: true,
  });
  return result.code === 0 ? result.stdout.trim() : undefined;
}

/**
 * Builds the project's image with the unchanged Dockerfile. The classic builder (the only one
 * here) leaves each build stage as an untagged image; tagging the stages too lets a run drop the
 * previous run's stages when they change, so a long-lived CI machine keeps one set, not one per
 * commit. Unchanged stages come from the cache.
 */
async function buildProjectImage(): Promise<void> {
  const builds = [
    { target: 'build', tag: `${IMAGE}-build` },
    { target: 'prod-deps', tag: `${IMAGE}-prod-deps` },
    { target: undefined, tag: IMAGE },
  ];
  for (const { target, tag } of builds) {
    const previous = await imageId(tag);
    // --network host: the build's `npm ci` reaches the registry the way this machine does.
    const args = [
      'build',
      '--network',
      'host',
      '--tag',
      tag,
      ...(target ? ['--target', target] : []),
    ];
    await run('docker', [...args, repo], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      timeoutMs: 900_000,
    });
    if (previous && previous !== (await imageId(tag))) {
      await run('docker', ['rmi', previous], { allowFailure: true });
    }
  }
}

async function stackHealthy(): Promise<{ db: string; backend: string }> {
  if (!compose) throw new Error('no compose project');
  const db = await compose.containerId('db');
  const backend = await compose.containerId('backend');
  await waitHealthy(db);
  await waitHealthy(backend);
  return { db, backend };
}

async function networksOf(container: string): Promise<string[]> {
  return Object.keys(
    await inspect<Record<string, unknown>>(container, '{{json .NetworkSettings.Networks}}'),
  );
}

/** Removes everything this run created; safe to call twice and after any failure. */
async function removeEverything(): Promise<void> {
  await run('docker', ['rm', '--force', '--volumes', bareContainer], { allowFailure: true });
  if (compose) {
    await compose.run(['down', '--volumes', '--remove-orphans', '--timeout', '20'], {
      allowFailure: true,
    });
  }
  const composeLabel = `label=com.docker.compose.project=${project}`;
  for (const label of [composeLabel, `label=${ownLabel}`]) {
    const containers = await output('docker', ['ps', '-aq', '--filter', label]);
    if (containers)
      await run('docker', ['rm', '-fv', ...containers.split('\n')], { allowFailure: true });
  }
  const networks = await output('docker', ['network', 'ls', '-q', '--filter', composeLabel]);
  if (networks)
    await run('docker', ['network', 'rm', ...networks.split('\n')], { allowFailure: true });
  const volumes = await output('docker', ['volume', 'ls', '-q', '--filter', composeLabel]);
  if (volumes)
    await run('docker', ['volume', 'rm', ...volumes.split('\n')], { allowFailure: true });
}

describe('the Docker Compose deployment', () => {
  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'tasks-containers-'));
    await ensureTools();
    daemon = await ensureDaemon(workDir);
    const built = await ensureStandIns(workDir);
    log(built.length ? `built stand-ins: ${built.join(', ')}` : 'stand-in base images cached');
    postgresPassword = randomBytes(18).toString('hex');
    apiPort = await freePort();
    metricsPort = await freePort();
    barePort = await freePort();
    const envFile = join(workDir, '.env');
    await writeEnvFile(envFile);
    compose = new ComposeProject(
      await composeCommand(),
      project,
      join(repo, 'docker-compose.yml'),
      envFile,
    );
  });

  afterAll(async () => {
    try {
      await removeEverything();
    } finally {
      await daemon?.stop();
      if (workDir) await rm(workDir, { recursive: true, force: true });
    }
  });

  step(
    '1. the image builds, runs as a numeric non-root user, and holds no dev dependencies, sources or .env',
    async () => {
      log(`building ${IMAGE} from the Dockerfile`);
      await buildProjectImage();

      const config = await inspect<{
        User: string;
        Env: string[];
        Cmd: string[];
        Healthcheck?: { Test: string[] };
      }>(IMAGE, '{{json .Config}}');
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
        await output('docker', ['run', '--rm', '--entrypoint', 'node', IMAGE, '-e', listing]),
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
        await output('docker', ['image', 'inspect', '--format', '{{.Size}}', IMAGE]),
      );
      const base = Number(
        await output('docker', ['image', 'inspect', '--format', '{{.Size}}', NODE_IMAGE]),
      );
      log(
        `image ${(size / 1e6).toFixed(1)} MB; the app adds ${((size - base) / 1e6).toFixed(1)} MB to ${NODE_IMAGE}`,
      );
    },
    900_000,
  );

  step('2. the stack comes up from a generated .env and both services become healthy', async () => {
    if (!compose) throw new Error('no compose project');
    hostPostgresBefore = await tcpProbe('127.0.0.1', 5432);
    log(`${compose.name}: up -d`);
    await compose.run(['up', '-d', '--no-build']);
    const { db, backend } = await stackHealthy();
    log('db and backend are healthy');
    expect((await api('/api/health/ready')).status).toBe(200);
    expect((await api('/api/health/live')).status).toBe(200);
    // As with the official image: PostgreSQL itself runs as uid 999, not as root.
    expect(await output('docker', ['exec', db, 'grep', '^Uid:', '/proc/1/status'])).toMatch(
      /^Uid:\s+999\s/,
    );
    expect(await inspect<boolean>(backend, '{{json .HostConfig.ReadonlyRootfs}}')).toBe(true);
  });

  step('3. through the published port: register, create a task, read it back', async () => {
    const email = `e2e-${runId}@example.com`;
    const registered = await api('/api/v1/auth/register', {
      method: 'POST',
      body: JSON.stringify({ email, password: 'correct horse battery staple' }),
    });
    expect(registered.status).toBe(201);
    account = registered.body as { token: string; user: { email: string } };
    expect(account.token).toEqual(expect.any(String));
    const auth = { authorization: `Bearer ${account.token}` };

    const created = await api('/api/v1/tasks', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ title: 'survive a restart' }),
    });
    expect(created.status).toBe(201);
    task = created.body as typeof task;
    expect(task).toMatchObject({ title: 'survive a restart', completed: false });
    expect(created.headers.get('location')).toMatch(new RegExp(`/api/v1/tasks/${task.id}$`));

    const read = await api(`/api/v1/tasks/${task.id}`, { headers: auth });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(task);
  });

  step(
    '4. the database is unreachable from the host and from other networks; metrics only on loopback',
    async () => {
      if (!compose) throw new Error('no compose project');
      const db = await compose.containerId('db');
      const backend = await compose.containerId('backend');

      // No published port on db, and its only network is internal.
      expect(
        await inspect<Record<string, unknown>>(db, '{{json .HostConfig.PortBindings}}'),
      ).toEqual({});
      const published = await inspect<Record<string, unknown> | null>(
        db,
        '{{json .NetworkSettings.Ports}}',
      );
      expect(Object.values(published ?? {}).filter((binding) => binding !== null)).toEqual([]);
      const [databaseNetwork, ...others] = await networksOf(db);
      expect(others).toEqual([]);
      expect(
        await output('docker', [
          'network',
          'inspect',
          '--format',
          '{{.Internal}}',
          databaseNetwork!,
        ]),
      ).toBe('true');

      if (hostPostgresBefore === 'connected') {
        log('something else listens on 127.0.0.1:5432 on this host; the refusal check is skipped');
      } else {
        expect(await tcpProbe('127.0.0.1', 5432)).toBe('ECONNREFUSED');
      }

      // From a container on the backend's other (non-internal) network: neither the name nor the address.
      const edge = (await networksOf(backend)).find((name) => name !== databaseNetwork);
      const dbAddress = await output('docker', [
        'inspect',
        '--format',
        `{{(index .NetworkSettings.Networks "${databaseNetwork}").IPAddress}}`,
        db,
      ]);
      const probe = `
      const net = require('node:net'), dns = require('node:dns');
      const tcp = new Promise((resolve) => {
        const s = net.connect({ host: process.argv[1], port: 5432 });
        s.setTimeout(3000, () => { s.destroy(); resolve('ETIMEDOUT'); });
        s.on('connect', () => { s.destroy(); resolve('connected'); });
        s.on('error', (e) => resolve(e.code));
      });
      const name = dns.promises.lookup('db').then(() => 'resolved', (e) => e.code);
      Promise.all([tcp, name]).then(([tcp, name]) => console.log(JSON.stringify({ tcp, name })));`;
      const fromEdge = JSON.parse(
        await output('docker', [
          'run',
          '--rm',
          '--label',
          ownLabel,
          '--network',
          edge!,
          '--entrypoint',
          'node',
          IMAGE,
          '-e',
          probe,
          dbAddress,
        ]),
      ) as { tcp: string; name: string };
      expect(fromEdge.tcp).not.toBe('connected');
      expect(fromEdge.name).not.toBe('resolved');

      // Metrics: published on 127.0.0.1 only, and not served on the API port.
      const bindings = await inspect<Record<string, { HostIp: string; HostPort: string }[] | null>>(
        backend,
        '{{json .NetworkSettings.Ports}}',
      );
      expect(bindings['9464/tcp']?.map((binding) => binding.HostIp)).toEqual(['127.0.0.1']);
      const metrics = await api('/metrics', {}, metricsPort);
      expect(metrics.status).toBe(200);
      expect(String(metrics.body)).toContain('# TYPE');
      expect((await api('/metrics')).status).toBe(404);
    },
  );

  step('5. down then up again keeps the data (the named volume survives)', async () => {
    if (!compose) throw new Error('no compose project');
    await compose.run(['down']);
    const composeLabel = `label=com.docker.compose.project=${project}`;
    expect(await output('docker', ['ps', '-aq', '--filter', composeLabel])).toBe('');
    expect(await output('docker', ['volume', 'ls', '-q', '--filter', composeLabel])).not.toBe('');
    log('down done, volume kept; up again');
    await compose.run(['up', '-d', '--no-build']);
    await stackHealthy();
    const read = await api(`/api/v1/tasks/${task.id}`, {
      headers: { authorization: `Bearer ${account.token}` },
    });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(task);
  });

  step(
    '6. the image runs as Kubernetes will: read-only root, numeric uid, no capabilities',
    async () => {
      if (!compose) throw new Error('no compose project');
      const db = await compose.containerId('db');
      const backend = await compose.containerId('backend');
      const [databaseNetwork] = await networksOf(db);
      const edge = (await networksOf(backend)).find((name) => name !== databaseNetwork);
      await run('docker', [
        'create',
        '--name',
        bareContainer,
        '--label',
        ownLabel,
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
        edge!,
        '--publish',
        `127.0.0.1:${barePort}:3000`,
        '--env',
        `DATABASE_URL=postgres://tasks:${postgresPassword}@db:5432/tasks`,
        // Only here, for step 7: /api/_test/slow holds a request open.
        '--env',
        'ENABLE_TEST_ROUTES=true',
        IMAGE,
      ]);
      await run('docker', ['network', 'connect', databaseNetwork!, bareContainer]);
      await run('docker', ['start', bareContainer]);
      await waitFor('the bare container to be ready', async () => {
        const status = await inspect<string>(bareContainer, '{{json .State.Status}}');
        if (status !== 'running') throw new GiveUp(`the container is ${status}`);
        return (await api('/api/health/ready', {}, barePort)).status === 200 ? true : undefined;
      });

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
    },
  );

  step(
    '7. docker stop during a slow request: the request completes, exit code 0, the logs show the drain',
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

  it('8. everything the run created is removed', async () => {
    await removeEverything();
    for (const label of [`label=com.docker.compose.project=${project}`, `label=${ownLabel}`]) {
      expect(await output('docker', ['ps', '-aq', '--filter', label])).toBe('');
      expect(await output('docker', ['network', 'ls', '-q', '--filter', label])).toBe('');
      expect(await output('docker', ['volume', 'ls', '-q', '--filter', label])).toBe('');
    }
    log(
      daemon?.startedPid
        ? `nothing left; the dockerd this run started (pid ${daemon.startedPid}) stops after the tests`
        : 'nothing left; the docker daemon was already running and stays up',
    );
  });
});
