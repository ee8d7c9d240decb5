import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inspect, tcpProbe } from './docker.ts';
import { EdgeClient, seedAccount, type Account } from './edge-client.ts';
import { log, output, run } from './shell.ts';
import { REPLICAS, repo, SERVICES, Stack } from './stack.ts';
import { STAND_INS } from './stand-ins.ts';
import { scenario } from './steps.ts';

/**
 * The promise of the README's VPS section: `.env` from `.env.example`, secrets from
 * `vps/init-secrets.sh`, `docker compose up -d`, and the API is live over HTTPS behind Caddy, with
 * only Caddy reachable from outside, the database on an internal network, client addresses that
 * cannot be spoofed and data that survives restarts. The unchanged docker-compose.yml and Caddyfile,
 * with stand-in images (e2e/containers/stand-ins.ts).
 */

const images = inject('backendImages');
const step = scenario();
let stack: Stack;
let edge: EdgeClient;
let account: Account;

interface ContainerFacts {
  Config: { Env: string[]; User: string };
  HostConfig: {
    ReadonlyRootfs: boolean;
    CapDrop: string[] | null;
    CapAdd: string[] | null;
    SecurityOpt: string[] | null;
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]> | null;
  };
  NetworkSettings: { Networks: Record<string, unknown> };
}

async function facts(service: string): Promise<ContainerFacts> {
  return inspect<ContainerFacts>(await stack.compose.containerId(service));
}

/** Plain HTTP to Caddy's published port 80. */
function plainGet(path: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: stack.httpPort, path, headers: { host: stack.domain } },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: res.headers.location });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('the VPS stack: docker-compose.yml behind Caddy', () => {
  beforeAll(async () => {
    stack = await Stack.create('stack', images.a);
  });
  afterAll(async () => {
    await stack?.remove();
  });

  step('1. comes up from .env.example and init-secrets.sh: every service healthy', async () => {
    await stack.up();
    // The script refuses to replace the password the database was created with.
    const again = await run('sh', [join(repo, 'vps/init-secrets.sh'), stack.envFile], {
      allowFailure: true,
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to overwrite/);
    const running = await output('docker', [
      'ps',
      '--filter',
      `label=com.docker.compose.project=${stack.compose.name}`,
      '--format',
      '{{.Label "com.docker.compose.service"}}',
    ]);
    expect(running.split('\n').sort()).toEqual([...SERVICES].sort());
  });

  step(
    '2. only Caddy publishes ports; every service runs locked down; no secret in any environment',
    async () => {
      const published = Object.fromEntries(
        await Promise.all(
          SERVICES.map(async (service) => {
            const bindings = (await facts(service)).HostConfig.PortBindings ?? {};
            return [
              service,
              Object.entries(bindings)
                .map(([port, hosts]) => `${port}@${hosts.map((h) => h.HostIp).join(',')}`)
                .sort(),
            ] as const;
          }),
        ),
      );
      expect(published).toEqual({
        db: [],
        backup: [],
        'backend-a': ['9464/tcp@127.0.0.1'],
        'backend-b': ['9464/tcp@127.0.0.1'],
        caddy: ['443/tcp@127.0.0.1', '443/udp@127.0.0.1', '80/tcp@127.0.0.1'],
      });

      const networks = async (service: string) =>
        Object.keys((await facts(service)).NetworkSettings.Networks)
          .map((name) => name.replace(`${stack.compose.name}_`, ''))
          .sort();
      expect(await networks('db')).toEqual(['database']);
      expect(await networks('backup')).toEqual(['database']);
      expect(await networks('caddy')).toEqual(['edge']);
      for (const replica of REPLICAS) expect(await networks(replica)).toEqual(['database', 'edge']);
      expect(
        await output('docker', [
          'network',
          'inspect',
          '--format',
          '{{.Internal}}',
          `${stack.compose.name}_database`,
        ]),
      ).toBe('true');

      const caddy = await facts('caddy');
      expect(caddy.HostConfig.ReadonlyRootfs).toBe(true);
      expect(caddy.HostConfig.CapDrop).toEqual(['ALL']);
      expect(caddy.HostConfig.CapAdd).toEqual(['NET_BIND_SERVICE']);
      expect(caddy.HostConfig.SecurityOpt).toEqual(['no-new-privileges:true']);
      const backup = await facts('backup');
      expect(backup.Config.User).toBe('999:999');
      expect(backup.HostConfig.ReadonlyRootfs).toBe(true);
      expect(backup.HostConfig.CapDrop).toEqual(['ALL']);
      for (const replica of REPLICAS) {
        expect((await facts(replica)).HostConfig.ReadonlyRootfs).toBe(true);
      }

      const password = await readFile(join(stack.workDir, 'secrets', 'postgres_password'), 'utf8');
      expect(password).toMatch(/^[0-9a-f]{48}$/);
      for (const service of SERVICES) {
        const env = (await facts(service)).Config.Env.join('\n');
        expect(env, service).not.toContain(password);
      }
      expect(await readFile(stack.envFile, 'utf8')).not.toContain(password);
    },
  );

  step('3. PostgreSQL is unreachable from the host and from the edge network', async () => {
    expect(await tcpProbe('127.0.0.1', 5432)).not.toBe('connected');
    const db = await stack.compose.containerId('db');
    const dbAddress = await output('docker', [
      'inspect',
      '--format',
      `{{(index .NetworkSettings.Networks "${stack.compose.name}_database").IPAddress}}`,
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
        stack.ownLabel,
        '--network',
        `${stack.compose.name}_edge`,
        '--entrypoint',
        'node',
        images.a,
        '-e',
        probe,
        dbAddress,
      ]),
    ) as { tcp: string; name: string };
    expect(fromEdge.tcp).not.toBe('connected');
    expect(fromEdge.name).not.toBe('resolved');
  });

  step("4. HTTPS verified against Caddy's own root, HTTP/2, HTTP redirects, HSTS", async () => {
    edge = await stack.edge();
    account = await seedAccount(edge, `stack-${randomUUID()}@example.com`, 3);

    const health = await edge.request('GET', '/api/health/live');
    expect(health.status).toBe(200);
    expect(health.body.version).toBe('e2e-a');
    expect(health.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');

    // Trusting only public roots instead, the same request is refused: the certificate really
    // is checked, against Caddy's root.
    const stranger = new EdgeClient(stack.domain, stack.httpsPort, rootCertificates.join('\n'));
    await expect(stranger.request('GET', '/api/health/live')).rejects.toThrow(
      /certificate|issuer|verify/i,
    );
    stranger.close();

    const h2 = await edge.http2Get('/api/health/live');
    expect(h2).toEqual({ alpn: 'h2', status: 200 });

    const redirect = await plainGet('/api/v1/tasks?limit=1');
    expect(redirect.status).toBe(308);
    expect(redirect.location).toBe(`https://${stack.domain}/api/v1/tasks?limit=1`);

    const list = await edge.request('GET', '/api/v1/tasks', { token: account.token });
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(3);
    // Metrics are never served through the edge.
    expect((await edge.request('GET', '/metrics')).status).toBe(404);
  });

  step("5. a body over the backend's largest limit (64 KiB) is refused at the edge", async () => {
    const big = Buffer.alloc(64 * 1024 + 1, 'a');
    const refused = await edge.request('POST', '/api/v1/tasks', {
      token: account.token,
      raw: big,
      headers: { 'content-type': 'application/json' },
    });
    expect(refused.status).toBe(413);
    expect(refused.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(refused.body.type).toBe('urn:tasks-backend:problem:payload-too-large');
    expect(refused.headers['strict-transport-security']).toBeDefined();
    // Caddy answered: the backend stamps every answer it writes with x-request-id.
    expect(refused.headers['x-request-id']).toBeUndefined();
    // The limit itself passes through (and the backend judges the JSON).
    const atLimit = await edge.request('POST', '/api/v1/tasks', {
      token: account.token,
      raw: Buffer.alloc(64 * 1024, ' '),
      headers: { 'content-type': 'application/json' },
    });
    expect(atLimit.status).toBe(400);
    expect(atLimit.headers['x-request-id']).toBeDefined();
  });

  step(
    '6. a spoofed X-Forwarded-For does not change the address the rate limiter sees',
    async () => {
      const limit = Number(await stack.env('AUTH_RATE_LIMIT_PER_MINUTE'));
      // The limit is counted in PostgreSQL, shared by both replicas: the attempt after `limit`
      // (fewer if this address signed in earlier this minute) is refused, whichever replica gets it.
      const budget = limit + 1;
      const statuses: number[] = [];
      for (let i = 0; i < budget && !statuses.includes(429); i++) {
        // A new email each time, so only the per-address limit can trip.
        const attempt = await edge.request('POST', '/api/v1/auth/login', {
          body: { email: `nobody-${i}-${randomUUID()}@example.com`, password: 'not the password' },
          headers: { 'x-forwarded-for': `203.0.113.${i + 1}`, 'x-real-ip': `198.51.100.${i + 1}` },
        });
        statuses.push(attempt.status);
      }
      log(`login attempts with rotating spoofed X-Forwarded-For: ${statuses.join(' ')}`);
      expect(statuses).toContain(429);
      expect(statuses.filter((status) => status !== 401 && status !== 429)).toEqual([]);

      // Another client (another address: a container on the edge network) is not limited, so the
      // backend tells clients apart by their real address, not Caddy's.
      const ca = edge.ca;
      const other = `
      const https = require('node:https');
      const req = https.request({ host: 'caddy', port: 443, servername: process.argv[1], ca: process.argv[2],
        method: 'POST', path: '/api/v1/auth/login',
        headers: { host: process.argv[1], 'content-type': 'application/json' } }, (res) => {
          res.resume(); console.log(res.statusCode); });
      req.on('error', (e) => { console.log(e.message); process.exit(1); });
      req.end(JSON.stringify({ email: 'someone-else@example.com', password: 'not the password' }));`;
      const fromElsewhere = await output('docker', [
        'run',
        '--rm',
        '--label',
        stack.ownLabel,
        '--network',
        `${stack.compose.name}_edge`,
        '--entrypoint',
        'node',
        images.a,
        '-e',
        other,
        stack.domain,
        ca,
      ]);
      expect(fromElsewhere).toBe('401');
    },
  );

  step('7. metrics of each replica on 127.0.0.1 only', async () => {
    for (const port of stack.metricsPorts) {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
        signal: AbortSignal.timeout(10_000),
      });
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('app_info{version="e2e-a"');
    }
  });

  step("8. down then up keeps the data and Caddy's certificates (named volumes)", async () => {
    await stack.compose.run(['down']);
    log('down done, volumes kept; up again');
    await stack.up();
    // The same client, trusting the same root: the CA survived in caddy-data.
    const read = await edge.request('GET', `/api/v1/tasks/${account.taskIds[0]}`, {
      token: account.token,
    });
    expect(read.status).toBe(200);
    expect(read.body.title).toBe(`task 0 of ${account.email}`);
  });

  step(
    '9. TLS_MODE=acme: the same Caddyfile asks Let’s Encrypt for DOMAIN with ACME_EMAIL',
    async () => {
      const adapted = JSON.parse(
        await output('docker', [
          'run',
          '--rm',
          '--label',
          stack.ownLabel,
          '--volume',
          `${join(repo, 'vps/Caddyfile')}:/etc/caddy/Caddyfile:ro`,
          '--env',
          'DOMAIN=api.example.com',
          '--env',
          'TLS_MODE=acme',
          '--env',
          'ACME_EMAIL=ops@example.com',
          STAND_INS.caddy,
          'caddy',
          'adapt',
          '--config',
          '/etc/caddy/Caddyfile',
        ]),
      );
      const policy = adapted.apps.tls.automation.policies[0];
      expect(policy.subjects).toEqual(['api.example.com']);
      expect(policy.issuers[0]).toEqual({ module: 'acme', email: 'ops@example.com' });
    },
  );

  it('10. everything the stack created is removed', async () => {
    await stack.remove();
    expect(await stack.leftovers()).toEqual([]);
  });
});
