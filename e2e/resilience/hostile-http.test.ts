import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../backend/test/support/wait.ts';
import { registerUser, useBackendOnOwnPostgres } from './support/backend.ts';
import { report } from './support/load.ts';
import { rawRequest, type RawAnswer } from './support/raw-http.ts';

const setup = useBackendOnOwnPostgres('hostile');
let token: string;
let rssBeforeMiB: number;
const answers: Record<string, string> = {};

beforeAll(async () => {
  token = await registerUser(setup.backend.baseUrl);
  rssBeforeMiB = setup.backend.memory().rssMiB;
});

const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;
const rejected = (a: RawAnswer) =>
  (a.status !== undefined && a.status >= 400 && a.status < 500) ||
  (a.status === undefined && a.closed);
const describeAnswer = (a: RawAnswer) =>
  a.status !== undefined ? String(a.status) : a.closed ? 'closed' : 'open';

/** Liveness from a fresh connection: the server still answers, and quickly. */
async function stillServing(): Promise<number> {
  const started = Date.now();
  const res = await fetch(`${setup.backend.baseUrl}/api/health/live`, {
    signal: AbortSignal.timeout(2000),
  });
  expect(res.status).toBe(200);
  return Date.now() - started;
}

const json = (path: string, body: string | Buffer, extra: string[] = []) => [
  Buffer.from(
    head([
      `POST ${path} HTTP/1.1`,
      'Host: 127.0.0.1',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...extra,
    ]),
  ),
  Buffer.isBuffer(body) ? body : Buffer.from(body),
];

const deep = 400_000;
// As deep as fits in an operation's body limit (64 KiB), so that the JSON is parsed, not refused.
const deepWithinLimit = 32_000;
const cases: [string, (string | Buffer)[]][] = [
  ['garbage request line', ['GARBAGE\r\n\r\n']],
  ['unknown HTTP version', [head(['GET /api/health/live HTTP/7.1', 'Host: x'])]],
  ['header without a colon', [head(['GET /api/health/live HTTP/1.1', 'Host: x', 'Bad Header'])]],
  ['NUL in a header value', [head(['GET /api/health/live HTTP/1.1', 'Host: x', 'X-A: a\0b'])]],
  ['space before a header colon', [head(['GET /api/health/live HTTP/1.1', 'Host: x', 'X-A : b'])]],
  [
    'non-numeric Content-Length',
    [head(['POST /api/v1/auth/login HTTP/1.1', 'Host: x', 'Content-Length: abc'])],
  ],
  [
    'Content-Length with Transfer-Encoding (smuggling)',
    [
      head([
        'POST /api/v1/auth/login HTTP/1.1',
        'Host: x',
        'Content-Length: 5',
        'Transfer-Encoding: chunked',
      ]),
      '0\r\n\r\n',
    ],
  ],
  [
    'a 100 KB header',
    [head(['GET /api/health/live HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(100_000)}`])],
  ],
  [
    '5000 headers',
    [
      head([
        'GET /api/health/live HTTP/1.1',
        'Host: x',
        ...Array.from({ length: 5000 }, (_, i) => `X-${i}: v`),
      ]),
    ],
  ],
  [
    'raw non-ASCII bytes in the path',
    [Buffer.from('GET /api/v1/tasks/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1')],
  ],
  [
    'invalid percent-encoded UTF-8 in the path',
    [head(['GET /api/v1/tasks/%ff%fe HTTP/1.1', 'Host: x', 'Authorization: Bearer x'])],
  ],
  ['5 MB JSON body', json('/api/v1/auth/login', JSON.stringify({ email: 'a'.repeat(5_000_000) }))],
  [
    'a declared 10 GB body',
    [
      head([
        'POST /api/v1/auth/login HTTP/1.1',
        'Host: x',
        'Content-Type: application/json',
        'Content-Length: 10000000000',
      ]),
      '{"a":',
    ],
  ],
  [
    'a 5 MB chunked JSON body',
    [
      head([
        'POST /api/v1/auth/login HTTP/1.1',
        'Host: x',
        'Content-Type: application/json',
        'Transfer-Encoding: chunked',
      ]),
      ...Array.from({ length: 80 }, () => `10000\r\n${'a'.repeat(0x10000)}\r\n`),
      '0\r\n\r\n',
    ],
  ],
  [
    `JSON nested ${deep} deep (unauthenticated)`,
    json('/api/v1/auth/login', `{"email":${'['.repeat(deep)}${']'.repeat(deep)}}`),
  ],
  [
    'invalid UTF-8 in a JSON body (unauthenticated)',
    json(
      '/api/v1/auth/login',
      Buffer.concat([
        Buffer.from('{"email":"'),
        Buffer.from([0xff, 0xfe, 0xc0, 0xaf]),
        Buffer.from('@example.com","password":"a long password"}'),
      ]),
    ),
  ],
  [
    'invalid UTF-8 in a bearer token',
    [
      Buffer.from(
        'GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n',
        'latin1',
      ),
    ],
  ],
];

describe('hostile HTTP over raw sockets', () => {
  it.each(cases)(
    'when a client sends %s, then it gets a 4xx or a closed socket, and the server keeps serving',
    async (name, chunks) => {
      const answer = await rawRequest(setup.backend.port, chunks, { timeoutMs: 10_000 });
      answers[name] = describeAnswer(answer);
      expect(rejected(answer), `${name}: ${answer.head.split('\r\n')[0] ?? ''}`).toBe(true);
      await stillServing();
    },
  );

  it('when an authenticated client sends nested JSON or invalid UTF-8 as a task, then it gets 400 and nothing is stored', async () => {
    const { backend } = setup;
    const { port } = backend;
    const auth = `Authorization: Bearer ${token}`;
    const nested = await rawRequest(
      port,
      json(
        '/api/v1/tasks',
        `{"title":${'['.repeat(deepWithinLimit)}${']'.repeat(deepWithinLimit)}}`,
        [auth],
      ),
    );
    const badUtf8 = await rawRequest(
      port,
      json(
        '/api/v1/tasks',
        Buffer.concat([
          Buffer.from('{"title":"'),
          Buffer.from([0xed, 0xa0, 0x80, 0xff]),
          Buffer.from('"}'),
        ]),
        [auth],
      ),
    );
    answers['nested JSON task (authenticated)'] = describeAnswer(nested);
    answers['invalid UTF-8 task title (authenticated)'] = describeAnswer(badUtf8);
    expect(nested.status).toBe(400);
    expect(badUtf8.status).toBe(400);
    const list = await fetch(`${backend.baseUrl}/api/v1/tasks`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
  });

  it('when 200 slowloris clients trickle headers and bodies, then other clients are still served promptly', async () => {
    const { port } = setup.backend;
    const sockets: net.Socket[] = [];
    const trickle = setInterval(() => {
      for (const socket of sockets) if (!socket.destroyed) socket.write('X-Slow: 1\r\n');
    }, 500);
    try {
      for (let i = 0; i < 200; i++) {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write(
          i % 2 === 0
            ? 'GET /api/health/live HTTP/1.1\r\nHost: x\r\n'
            : 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"e',
        );
        sockets.push(socket);
      }
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        latencies.push(await stillServing());
        await sleep(300);
      }
      const open = sockets.filter((s) => !s.destroyed).length;
      answers['200 slowloris sockets'] =
        `${open} still open after 3 s; liveness max ${Math.max(...latencies)} ms`;
      expect(Math.max(...latencies)).toBeLessThan(1000);
    } finally {
      clearInterval(trickle);
      for (const socket of sockets) socket.destroy();
    }
  });

  it('after all of it, the process is up and its memory is bounded', async () => {
    const { backend } = setup;
    await stillServing();
    const { rssMiB, peakMiB } = backend.memory();
    report('hostile HTTP', {
      answers,
      rssBeforeMiB: Math.round(rssBeforeMiB),
      rssAfterMiB: Math.round(rssMiB),
      peakMiB: Math.round(peakMiB),
    });
    expect(backend.running()).toBe(true);
    // Generous: the 64 KiB body limit and the 16 KB header limit keep this far below.
    expect(peakMiB - rssBeforeMiB).toBeLessThan(200);
  });
});
