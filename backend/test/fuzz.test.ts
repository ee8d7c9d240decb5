import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDocument } from '../src/app.ts';
import { useTestApp } from './support/test-app.ts';

/**
 * Property-based fuzzing over real HTTP: whatever a client sends in bodies, headers and paths,
 * the server answers below 500 (and conforms to the OpenAPI document, via the client) and keeps
 * answering. Every run has a new seed, printed first; `FUZZ_SEED=<seed> npx vitest run
 * backend/test/fuzz.test.ts` replays it (a failure also prints fast-check's seed and path).
 */

const seed = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
fc.configureGlobal({ seed });
console.log(`fuzz: seed ${seed} (replay with FUZZ_SEED=${seed})`);

const { client } = useTestApp();
let token: string;
let credentials: { email: string; password: string };
let taskId: string;
let userId: string;
let casesRun = 0;

beforeAll(async () => {
  const user = await client.register();
  token = user.token;
  userId = user.id;
  credentials = { email: user.email, password: user.password };
  taskId = (await client.post('/api/v1/tasks', { token, body: { title: 'fuzz target' } })).body.id;
});
afterAll(() => {
  console.log(`fuzz: ${casesRun} requests generated and sent (seed ${seed})`);
});

const field = fc.oneof(
  fc.constantFrom('title', 'notes', 'completed', 'dueAt', 'email', 'password'),
  fc.constantFrom('id', 'completedAt', 'currentPassword', 'newPassword'),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype'),
);
/** RFC 3339 date-times across and beyond PostgreSQL's range (years -100 to 10000), any offset. */
const between = (min: string, max: string) =>
  fc.date({ min: new Date(min), max: new Date(max), noInvalidDate: true });
const dateTime = fc
  .tuple(
    fc.oneof(
      between('-000100-01-01T00:00:00Z', '+010000-12-31T00:00:00Z'),
      // The edges of PostgreSQL's and RFC 3339's ranges, where bugs live.
      between('-000001-12-31T00:00:00Z', '0001-01-02T00:00:00Z'),
      between('9999-12-30T00:00:00Z', '+010000-01-02T00:00:00Z'),
    ),
    fc.constantFrom(0, 60, -60, 330, -720, 840),
  )
  .map(([date, offsetMinutes]) => {
    const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, -1);
    if (offsetMinutes === 0) return `${local}Z`;
    const sign = offsetMinutes > 0 ? '+' : '-';
    const abs = Math.abs(offsetMinutes);
    return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  });
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  dateTime,
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.constantFrom(
    '',
    '\u0000',
    '\ud800',
    '2027-02-30T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '-1',
    'x'.repeat(10_001),
  ),
  fc.integer(),
  fc.double(),
  fc.uuid(),
  fc.uuid().map((id) => id.toUpperCase()),
);
/** Shapes that once made the error answer grow with the request (the probe's amplification). */
const amplifying = fc.oneof(
  fc
    .integer({ min: 50, max: 5000 })
    .map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
  fc.integer({ min: 50, max: 20_000 }).map((n) => ({ title: Array<string>(n).fill('x') })),
  fc
    .integer({ min: 1000, max: 60_000 })
    .map((n) => ({ ['k'.repeat(n)]: 1, [`j${'k'.repeat(n)}`]: 2 })),
);
const body = fc.oneof(
  fc.dictionary(field, value, { maxKeys: 6 }),
  fc.jsonValue({ maxDepth: 4 }),
  amplifying,
);
/** No refusal may be large, whatever the request: the size of an answer is the server's work. */
const maxProblemBytes = 8192;
const rawBody = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '{',
    '{"title":',
    '[[[[[[[[',
    '{"a":1}{"b":2}',
    '\u0000',
    '{"title":"\\ud800"}',
    'null',
    '"string"',
  ),
);
// Every documented path, so a new route is fuzzed the day it is added; `{param}` is the task's id.
const documentedPaths = Object.keys(apiDocument('test').paths as object).map((template) =>
  template.replace(/\{\w+\}/g, 'TASK'),
);
const path = fc.oneof(
  fc.constantFrom(...documentedPaths),
  fc.string({ maxLength: 40 }).map((s) => `/api/v1/tasks/${encodeURIComponent(s)}`),
  fc.constantFrom(
    '/api/v1/tasks/%',
    '/api/v1/tasks/%E0%A4%A',
    '/api/v1/tasks/..%2f..%2fetc',
    '/api/v1/tasks/00000000-0000-0000-0000-000000000000',
  ),
);
const cursor = fc
  .tuple(dateTime, fc.uuid())
  .map(([t, i]) => `?cursor=${Buffer.from(JSON.stringify({ t, i })).toString('base64url')}`);
/** Sync tokens of the server's shape with any content, this user's or not. */
const syncToken = fc
  .record(
    {
      v: fc.oneof(fc.constant(1), fc.integer()),
      u: fc.oneof(fc.constant('USER'), fc.uuid(), fc.string({ maxLength: 5 })),
      s: fc.oneof(fc.nat({ max: 50 }), fc.integer(), fc.double(), fc.constant(2 ** 63)),
      i: fc.uuid(),
    },
    { requiredKeys: [] },
  )
  .map((t) => `?since=TOKEN:${JSON.stringify(t)}`);
/** The query as sent: a generated sync token is encoded, and 'USER' in it becomes this user's id. */
const queryString = (q: string): string => {
  if (!q.startsWith('?since=TOKEN:')) return q;
  const fields = JSON.parse(q.slice('?since=TOKEN:'.length)) as Record<string, unknown>;
  if (fields['u'] === 'USER') fields['u'] = userId;
  return `?since=${Buffer.from(JSON.stringify(fields)).toString('base64url')}`;
};
const query = fc.oneof(
  fc.constant(''),
  cursor,
  syncToken,
  fc
    .dictionary(
      fc.constantFrom(
        'limit',
        'cursor',
        'completed',
        'x',
        'since',
        'sort',
        'dueBefore',
        'dueAfter',
      ),
      fc.oneof(
        fc.string({ maxLength: 30 }),
        dateTime,
        fc.constantFrom('createdAt', 'updatedAt', 'dueAt'),
      ),
    )
    .map((q) => `?${new URLSearchParams(q).toString()}`),
  fc.constantFrom(
    '?limit=1&limit=2',
    '?cursor=eyJ0IjoiMjAyNyJ9',
    '?limit=1e3',
    '?completed[]=true',
    '?%zz',
  ),
);
const headerValue = fc
  .string({ minLength: 0, maxLength: 300 })
  .map((s) => s.replace(/[^\x20-\x7e]/g, ''));
const headers = fc.record(
  {
    'if-match': fc.oneof(
      headerValue,
      fc.constantFrom('"1"', '*', 'W/"1"', '"-1"', '"99999999999"'),
    ),
    'if-none-match': fc.oneof(headerValue, fc.constantFrom('"1"', '*')),
    'idempotency-key': headerValue,
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=latin1',
      'text/plain',
      'application/merge-patch+json',
      '',
    ),
    'x-request-id': headerValue,
  },
  { requiredKeys: [] },
);
const authorization = fc.oneof(
  fc.constant('valid'),
  fc.constant('none'),
  headerValue.map((s) => `Bearer ${s}`),
);

describe('fuzzing the API', () => {
  it('when any method, path, query, header and body are sent, then the answer is below 500 and the server stays up', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT'),
        path,
        query,
        headers,
        authorization,
        fc.oneof(
          body.map((b) => ({ body: b })),
          rawBody.map((raw) => ({ raw })),
        ),
        async (method, p, q, h, auth, payload) => {
          casesRun++;
          const requestHeaders: Record<string, string> = Object.fromEntries(
            Object.entries(h).filter(([, v]) => v !== ''),
          );
          if (auth === 'valid') requestHeaders['authorization'] = `Bearer ${token}`;
          else if (auth !== 'none') requestHeaders['authorization'] = auth;
          const hasBody = method !== 'GET' && method !== 'DELETE';
          const res = await client.request(method, p.replaceAll('TASK', taskId) + queryString(q), {
            headers: requestHeaders,
            ...(hasBody ? payload : {}),
          });
          expect(res.status).toBeLessThan(500);
          // A fuzzed logout with the valid token ends the session: sign in again and go on.
          if (
            res.status === 204 &&
            ['/api/v1/auth/logout', '/api/v1/auth/logout-all', '/api/v1/me/sessions/TASK'].includes(
              p,
            )
          ) {
            token = (await client.post('/api/v1/auth/login', { body: credentials })).body.token;
          }
          if (res.status >= 400) {
            expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
            expect(res.text.length).toBeLessThan(maxProblemBytes);
          }
        },
      ),
      { numRuns: 600 },
    );
    expect((await client.get('/api/health/ready')).status).toBe(200);
  });

  it('when a body is built to make the refusal large, then every refusal stays small', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          ['POST', '/api/v1/auth/register'],
          ['POST', '/api/v1/auth/login'],
          ['POST', '/api/v1/tasks'],
          ['PATCH', '/api/v1/tasks/TASK'],
        ),
        amplifying,
        async ([method, p], b) => {
          casesRun++;
          const res = await client.request(method, p.replace('TASK', taskId), { token, body: b });
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
          expect(res.text.length).toBeLessThan(maxProblemBytes);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('when task bodies are arbitrary, then a 201 always stores exactly what it returns', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(field, value, { maxKeys: 5 }), async (b) => {
        casesRun++;
        const res = await client.post('/api/v1/tasks', { token, body: b });
        expect([201, 400]).toContain(res.status);
        if (res.status === 201) {
          const read = await client.get(`/api/v1/tasks/${res.body.id}`, { token });
          expect(read.body).toEqual(res.body);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('when dueAt and cursors are any date-time, then the answer is 2xx or 400 and a stored dueAt reads back', async () => {
    await fc.assert(
      fc.asyncProperty(dateTime, cursor, async (dueAt, cursorQuery) => {
        casesRun += 2;
        const res = await client.post('/api/v1/tasks', { token, body: { title: 'when', dueAt } });
        expect([201, 400]).toContain(res.status);
        if (res.status === 201) {
          expect(Date.parse(res.body.dueAt)).toBe(Date.parse(dueAt));
          const again = await client.patch(`/api/v1/tasks/${res.body.id}`, {
            token,
            body: { dueAt: res.body.dueAt },
          });
          expect(again.status).toBe(200);
        }
        const page = await client.get(`/api/v1/tasks${cursorQuery}&limit=1`, { token });
        expect([200, 400]).toContain(page.status);
      }),
      { numRuns: 200 },
    );
  });
});
