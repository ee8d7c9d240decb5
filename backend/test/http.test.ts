import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { capturingLogger } from './support/log-capture.ts';
import { startTestApp, useTestApp } from './support/test-app.ts';
import { waitFor } from './support/wait.ts';

const { client, app } = useTestApp();

const expectProblem = (
  res: { status: number; headers: Headers; body: any; text: string },
  status: number,
) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  expect(res.body.type).toMatch(/^urn:tasks-backend:problem:/);
  // Never a stack trace, SQL or a driver message.
  expect(res.text).not.toMatch(/at .*\.ts:\d+|SELECT|INSERT|pg_|node_modules|Error:/);
};

describe('HTTP basics', () => {
  it('when a route does not exist, then 404 problem', async () => {
    const res = await client.get('/api/nope');
    expectProblem(res, 404);
  });

  it('when JSON is malformed, then 400 problem', async () => {
    const res = await client.post('/api/v1/auth/register', {
      raw: '{"email": "a@b.c",',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400);
    expect(res.body.type).toMatch(/malformed-json/);
  });

  it('when the body is over 1 MB, then 413 problem', async () => {
    const res = await client.post('/api/v1/auth/register', {
      raw: JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(1024 * 1024 + 10) }),
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 413);
  });

  it('when the JSON body is not valid UTF-8, then 400 problem and nothing is stored', async () => {
    const { token } = await client.register();
    const res = await client.post('/api/v1/tasks', {
      token,
      raw: Buffer.concat([
        Buffer.from('{"title":"caf'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]),
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400);
    expect((await client.get('/api/v1/tasks', { token })).body.items).toEqual([]);
  });

  it('when the declared body length is over 1 MB, then 413 at once, without reading the body', async () => {
    const { port } = new URL(app().baseUrl);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        // Headers only: a server that waited for the 10 GB body would never answer.
        socket.write(
          'POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            'Content-Length: 10000000000\r\n\r\n{',
        );
      });
      let received = '';
      socket.setTimeout(5000, () => reject(new Error(`no answer; got: ${received}`)));
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString();
        if (received.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
  });

  it('when the body is not JSON, then 415 problem', async () => {
    const res = await client.post('/api/v1/auth/register', {
      raw: 'email=a@b.co',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectProblem(res, 415);
  });

  it('when a path is not valid percent-encoding, then 400 problem rather than 500', async () => {
    const { token } = await client.register();
    const res = await client.get('/api/v1/tasks/%E0%A4%A', { token });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('when a JSON answer is sent, then its headers say what it is, and HEAD gets the same headers without the body', async () => {
    const { token } = await client.register();
    const created = await client.post('/api/v1/tasks', { token, body: { title: 'héllo ✓' } });
    const url = `${app().baseUrl}/api/v1/tasks/${created.body.id}`;
    const headers = { authorization: `Bearer ${token}` };
    const get = await fetch(url, { headers });
    const body = Buffer.from(await get.arrayBuffer());
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(get.headers.get('content-length')).toBe(String(body.length)); // bytes, not characters
    expect(JSON.parse(body.toString('utf8'))).toEqual(created.body);

    const head = await fetch(url, { method: 'HEAD', headers });
    expect(head.status).toBe(200);
    for (const name of ['content-type', 'content-length', 'etag', 'cache-control']) {
      expect(head.headers.get(name), name).toBe(get.headers.get(name));
    }
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('when a sane X-Request-Id is sent, then it is echoed; otherwise one is generated', async () => {
    const given = await client.get('/api/health/live', {
      headers: { 'x-request-id': 'abc-123.XYZ' },
    });
    expect(given.headers.get('x-request-id')).toBe('abc-123.XYZ');
    const insane = await client.get('/api/health/live', {
      headers: { 'x-request-id': 'bad id with spaces <script>' },
    });
    expect(insane.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const none = await client.get('/api/health/live');
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("sends the security headers OWASP's REST cheat sheet asks of an API, and no X-Powered-By", async () => {
    for (const res of [await client.get('/api/health/live'), await client.get('/api/v1/me')]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('strict-transport-security')).toBe(
        'max-age=31536000; includeSubDomains',
      );
      expect(res.headers.get('content-security-policy')).toBe(
        "default-src 'none'; frame-ancestors 'none'",
      );
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('serves no metrics on the public port', async () => {
    expect((await client.get('/metrics')).status).toBe(404);
  });

  it('serves the OpenAPI document', async () => {
    const res = await client.get('/api/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(Object.keys(res.body.paths)).toContain('/api/v1/tasks/{id}');
  });

  it('when test routes are off (the default), then they do not exist', async () => {
    expect((await client.get('/api/_test/slow?ms=1')).status).toBe(404);
  });
});

describe('bounded answers to hostile bodies', () => {
  it('when a sign-in body of 100,000 unknown keys (about 1 MB) arrives, then 413 at once, and the answer is small', async () => {
    const keys = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 0]));
    const raw = JSON.stringify({
      email: 'a@example.com',
      password: 'long enough password',
      ...keys,
    });
    expect(raw.length).toBeGreaterThan(900_000);
    const started = performance.now();
    const res = await client.post('/api/v1/auth/login', {
      raw,
      headers: { 'content-type': 'application/json' },
    });
    const ms = performance.now() - started;
    expect(res.status).toBe(413);
    expect(res.text.length).toBeLessThan(1024);
    console.log(
      `[hostile body] 100,000 keys, ${raw.length} bytes: ${res.status}, ${res.text.length} bytes, ${ms.toFixed(1)} ms`,
    );
  });

  it('when a body within the limit is nothing but unknown keys, then at most 20 are listed and the rest counted', async () => {
    const keys = Object.fromEntries(Array.from({ length: 350 }, (_, i) => [`k${i}`, 0]));
    const res = await client.post('/api/v1/auth/login', {
      body: { email: 'a@example.com', password: 'long enough password', ...keys },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toHaveLength(20);
    expect(res.body.detail).toMatch(/has 350 problems: .*; and 330 more$/);
    expect(res.text.length).toBeLessThan(4096);
  });

  it('when unknown keys are very long, then their names are cut in the answer', async () => {
    const { token } = await client.register();
    const res = await client.post('/api/v1/tasks', {
      token,
      body: { title: 't', ['x'.repeat(50_000)]: 1 },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].name).toBe(`${'x'.repeat(100)}…`);
    expect(res.text.length).toBeLessThan(1024);
  });

  it('when an operation takes no body, then one is refused', async () => {
    const { token } = await client.register();
    const res = await client.post('/api/v1/auth/logout', { token, body: { everywhere: true } });
    expectProblem(res, 400);
    expect(res.body.errors).toEqual([{ name: '(body)', in: 'body', reason: 'must be empty' }]);
    expect((await client.get('/api/v1/me', { token })).status).toBe(200); // still signed in
  });

  it('when an operation takes no query parameters, then they are refused', async () => {
    const { token } = await client.register();
    const res = await client.get('/api/v1/me?access_token=abc', { token });
    expectProblem(res, 400);
    expect(res.body.errors).toEqual([
      { name: 'access_token', in: 'query', reason: 'is not a known parameter' },
    ]);
  });
});

describe('what reaches the log', () => {
  it('when requests end as they may, then each writes one line at its level: completed, errored with its cause, aborted; probes none', async () => {
    const capture = capturingLogger();
    const logged = await startTestApp(
      { LOG_LEVEL: 'info', ENABLE_TEST_ROUTES: 'true' },
      { logger: capture.logger },
    );
    try {
      const get = (path: string, id: string) =>
        fetch(`${logged.baseUrl}${path}`, { headers: { 'x-request-id': id } });
      await get('/api/health/live', 'probe');
      await get('/api/v1/me', 'anonymous');
      await get('/api/_test/error', 'failing');
      const aborted = new AbortController();
      const arrived = new Promise((resolve) => logged.server.once('request', resolve));
      const slow = fetch(`${logged.baseUrl}/api/_test/slow?ms=3000`, {
        headers: { 'x-request-id': 'given-up' },
        signal: aborted.signal,
      }).catch(() => 'aborted');
      await arrived;
      aborted.abort();
      expect(await slow).toBe('aborted');
      const line = (id: string) =>
        capture.lines().filter((l) => (l['req'] as { id?: string } | undefined)?.id === id);
      await waitFor("the aborted request's line", () => line('given-up').length === 1, {
        timeoutMs: 2000,
      });

      expect(line('probe')).toEqual([]);
      expect(line('anonymous')).toEqual([
        expect.objectContaining({
          level: 'warn',
          msg: 'request completed',
          req: {
            id: 'anonymous',
            method: 'GET',
            url: '/api/v1/me',
            remoteAddress: expect.any(String),
          },
          res: { statusCode: 401 },
          responseTime: expect.any(Number),
        }),
      ]);
      expect(line('failing')).toEqual([
        expect.objectContaining({
          level: 'error',
          msg: 'request errored',
          res: { statusCode: 500 },
          err: expect.objectContaining({
            message: 'deliberate test failure',
            stack: expect.any(String),
          }),
        }),
      ]);
      expect(line('given-up')).toEqual([
        expect.objectContaining({ level: 'warn', msg: 'request aborted' }),
      ]);
    } finally {
      await logged.close();
    }
  });

  it('when a credential is put in a URL, then the logged URL keeps only the parameters the API declares', async () => {
    const capture = capturingLogger();
    const logged = await startTestApp({ LOG_LEVEL: 'info' }, { logger: capture.logger });
    try {
      const secret = 'k2a1Qx9_secret-token-value-that-must-not-leak';
      await fetch(`${logged.baseUrl}/api/v1/me?access_token=${secret}`);
      await fetch(`${logged.baseUrl}/api/v1/tasks?limit=5&password=${secret}&cursor=abc`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      await fetch(`${logged.baseUrl}/api/nowhere?token=${secret}`);
      await waitFor(
        'three request lines',
        () => capture.lines().filter((l) => l['req']).length === 3,
        {
          timeoutMs: 2000,
        },
      );
      expect(capture.text()).not.toContain(secret);
      const urls = capture
        .lines()
        .flatMap((line) => (line['req'] ? [(line['req'] as { url: string }).url] : []));
      expect(urls).toEqual([
        '/api/v1/me?access_token=%5Bredacted%5D',
        '/api/v1/tasks?limit=5&password=%5Bredacted%5D&cursor=abc',
        '/api/nowhere?token=%5Bredacted%5D',
      ]);
    } finally {
      await logged.close();
    }
  });
});
