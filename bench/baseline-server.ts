import { createHash } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import {
  baselineNamed,
  decodeSyncToken,
  isAnswer,
  requestHash,
  type Answer,
  type RequestValues,
  type Row,
  type Step,
} from './baselines.ts';
import type { ScenarioName } from './scenarios.ts';

/**
 * A node:http + pg baseline: what Node and the driver do with no framework. It answers the
 * benchmark's requests by running the steps its declaration in baselines.ts gives (BASELINE, by
 * name), with the same pool settings and the same JSON as the backend, and nothing else: no
 * validation library, no logging, no metrics, no security headers.
 * Run as its own process: PORT, DATABASE_URL, DATABASE_POOL_MAX, BASELINE.
 */

const baseline = baselineNamed(process.env['BASELINE'] ?? 'two-query');
const port = Number(process.env['PORT'] ?? 0);
const pool = new pg.Pool({
  connectionString: process.env['DATABASE_URL'],
  max: Number(process.env['DATABASE_POOL_MAX'] ?? 10),
  connectionTimeoutMillis: 2000,
  statement_timeout: 5000,
  idleTimeoutMillis: 30_000,
  keepAlive: true,
});

function send(res: http.ServerResponse, { status, body, headers }: Answer) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The benchmark's requests, routed as the backend routes them. */
function route(
  method: string | undefined,
  url: URL,
  headers: http.IncomingHttpHeaders,
  body: Record<string, unknown>,
): ScenarioName | undefined {
  if (method === 'GET' && url.pathname === '/api/v1/tasks/changes') {
    return url.searchParams.has('since') ? 'sync' : 'sync-cold';
  }
  if (method === 'GET' && url.pathname.startsWith('/api/v1/tasks/')) return 'get-by-id';
  if (method === 'GET' && url.pathname === '/api/v1/tasks') return 'list';
  if (method === 'POST' && url.pathname === '/api/v1/tasks') {
    if (headers['idempotency-key'] !== undefined) return 'create-idempotent';
    return body['id'] === undefined ? 'create' : 'create-with-id';
  }
  return undefined;
}

/** What the statements need from the request; a problem status when it cannot be had. */
function requestValues(
  req: http.IncomingMessage,
  url: URL,
  body: Record<string, unknown>,
): RequestValues | number {
  const token = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!token) return 401;
  const values: RequestValues = {
    tokenHash: createHash('sha256').update(token).digest(),
    taskId: url.pathname.slice('/api/v1/tasks/'.length),
    limit: Number(url.searchParams.get('limit') ?? 50),
    title: typeof body['title'] === 'string' ? body['title'] : '',
  };
  const since = url.searchParams.get('since');
  if (since !== null) {
    const position = decodeSyncToken(since);
    if (!position) return 400;
    values.since = position;
  }
  const key = req.headers['idempotency-key'];
  if (typeof key === 'string') values.idempotencyKey = key;
  if (typeof body['id'] === 'string') values.newTaskId = body['id'];
  if (req.method === 'POST') values.requestHash = requestHash(body);
  return values;
}

let readyCheckedAt = 0;

const names = new Map<string, string>();
/** The statement as pg sends it: named (prepared once per connection) if the baseline says so. */
function statement(sql: string, values: unknown[]): pg.QueryConfig {
  if (!baseline.prepared || values.length === 0) return { text: sql, values };
  let name = names.get(sql);
  if (name === undefined) names.set(sql, (name = `baseline_${names.size}`));
  return { name, text: sql, values };
}

/** Runs the steps, those between BEGIN and COMMIT on one client; the last step's answer. */
async function run(steps: readonly Step[], values: RequestValues): Promise<Answer> {
  let tx: pg.PoolClient | undefined;
  try {
    for (const step of steps) {
      if (step.sql === 'BEGIN') tx = await pool.connect();
      const { rows } = await (tx ?? pool).query<Row>(statement(step.sql, step.params(values)));
      if (step.sql === 'COMMIT') {
        tx?.release();
        tx = undefined;
      }
      const next = step.after(rows, values);
      if (isAnswer(next)) return next;
      Object.assign(values, next);
    }
  } finally {
    // Answered (or failed) inside a transaction: undo it, then give the client back.
    if (tx) {
      const client = tx;
      await client.query('ROLLBACK').then(
        () => client.release(),
        (error: unknown) => client.release(error as Error),
      );
    }
  }
  throw new Error(`${baseline.name}: the last step did not answer`);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/api/health/ready') {
    // Cached for a second, as the backend's readiness is.
    if (Date.now() - readyCheckedAt > 1000) {
      await pool.query('SELECT 1');
      readyCheckedAt = Date.now();
    }
    const body = {
      status: 'ok',
      version: 'baseline',
      database: 'ok',
      migrations: 'ok',
      shutdown: 'no',
    };
    send(res, { status: 200, body });
    return;
  }
  const text = req.method === 'POST' ? await readBody(req) : '';
  const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  const scenario = route(req.method, url, req.headers, body);
  const steps = scenario && baseline.plans[scenario];
  if (!steps) {
    send(res, { status: 404, body: { status: 404 } });
    return;
  }
  const values = requestValues(req, url, body);
  if (typeof values === 'number') {
    send(res, { status: values, body: { status: values } });
    return;
  }
  send(res, await run(steps, values));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(() => send(res, { status: 503, body: { status: 503 } }));
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', port: address.port, baseline: baseline.name }));
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  void pool.end().then(() => process.exit(0));
});
