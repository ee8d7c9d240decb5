import { createHash } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';

/**
 * The node:http + pg baseline: what Node and the driver do with no framework. It answers the
 * benchmark's requests with the same SQL as the backend (the session lookup, then the task query),
 * the same pool settings and the same JSON, and nothing else: no validation library, no logging,
 * no metrics, no security headers. Run as its own process: PORT, DATABASE_URL, DATABASE_POOL_MAX.
 */

const port = Number(process.env['PORT'] ?? 0);
const pool = new pg.Pool({
  connectionString: process.env['DATABASE_URL'],
  max: Number(process.env['DATABASE_POOL_MAX'] ?? 10),
  connectionTimeoutMillis: 2000,
  statement_timeout: 5000,
  idleTimeoutMillis: 30_000,
  keepAlive: true,
});

// The backend's SQL, character for character (backend/src/{auth,tasks}/repository.ts).
const columns = 'id, title, notes, completed, due_at, created_at, updated_at, version';
const selectSessionUser = `
  SELECT u.id, u.email, u.created_at
  FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = $1 AND s.expires_at > now()`;
const selectTask = `SELECT ${columns} FROM tasks WHERE id = $1 AND user_id = $2`;
const listTasks = `SELECT ${columns} FROM tasks WHERE user_id = $1
     ORDER BY created_at DESC, id DESC LIMIT $2`;
const insertTask = `
  INSERT INTO tasks (user_id, title, notes, completed, due_at)
  VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, false), $5)
  RETURNING ${columns}`;

interface TaskRow {
  id: string;
  title: string;
  notes: string;
  completed: boolean;
  due_at: Date | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const toTask = (row: TaskRow) => ({
  id: row.id,
  title: row.title,
  notes: row.notes,
  completed: row.completed,
  dueAt: row.due_at?.toISOString() ?? null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  version: row.version,
});

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function sessionUser(req: http.IncomingMessage): Promise<string | undefined> {
  const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  if (!match?.[1]) return undefined;
  const hash = createHash('sha256').update(match[1]).digest();
  const { rows } = await pool.query<{ id: string }>(selectSessionUser, [hash]);
  return rows[0]?.id;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

let readyCheckedAt = 0;

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/api/health/ready') {
    // Cached for a second, as the backend's readiness is.
    if (Date.now() - readyCheckedAt > 1000) {
      await pool.query('SELECT 1');
      readyCheckedAt = Date.now();
    }
    send(res, 200, {
      status: 'ok',
      version: 'baseline',
      database: 'ok',
      migrations: 'ok',
      shutdown: 'no',
    });
    return;
  }
  const body = req.method === 'POST' ? await readBody(req) : '';
  const userId = await sessionUser(req);
  if (!userId) {
    send(res, 401, { status: 401 });
    return;
  }
  if (req.method === 'GET' && url.pathname.startsWith('/api/v1/tasks/')) {
    const { rows } = await pool.query<TaskRow>(selectTask, [url.pathname.slice(14), userId]);
    if (!rows[0]) {
      send(res, 404, { status: 404 });
      return;
    }
    const task = toTask(rows[0]);
    send(res, 200, task, { ETag: `"${task.version}"`, 'Cache-Control': 'private, no-cache' });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/api/v1/tasks') {
    const limit = Number(url.searchParams.get('limit') ?? 50);
    const { rows } = await pool.query<TaskRow>(listTasks, [userId, limit + 1]);
    send(res, 200, { items: rows.slice(0, limit).map(toTask), nextCursor: null });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/api/v1/tasks') {
    const input = JSON.parse(body) as { title: string };
    const { rows } = await pool.query<TaskRow>(insertTask, [userId, input.title, null, null, null]);
    const task = toTask(rows[0]!);
    send(res, 201, task, { Location: `/api/v1/tasks/${task.id}`, ETag: `"${task.version}"` });
    return;
  }
  send(res, 404, { status: 404 });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(() => send(res, 503, { status: 503 }));
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', port: address.port }));
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  void pool.end().then(() => process.exit(0));
});
