import { randomUUID } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { Agent, request } from 'node:https';
import { connect as connectHttp2 } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { LookupFunction } from 'node:net';

/**
 * The API as a client on the internet sees it: HTTPS to DOMAIN on Caddy's published port, the
 * certificate verified against Caddy's own root (never "insecure"). DOMAIN resolves to 127.0.0.1
 * here, so the name in the URL, the SNI and the certificate check are the real ones.
 */

export interface EdgeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  ms: number;
}

export interface RequestOptions {
  token?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Sent as is (a Buffer or string), instead of JSON. */
  raw?: Buffer | string;
  timeoutMs?: number;
}

const loopback: LookupFunction = (_hostname, options, callback) => {
  if ((options as { all?: boolean }).all) {
    (callback as (err: null, addresses: LookupAddress[]) => void)(null, [
      { address: '127.0.0.1', family: 4 },
    ]);
  } else {
    callback(null, '127.0.0.1', 4);
  }
};

export class EdgeClient {
  private readonly agent: Agent;

  constructor(
    readonly domain: string,
    readonly httpsPort: number,
    readonly ca: string,
    maxSockets = 16,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, ca, lookup: loopback });
  }

  get origin(): string {
    return `https://${this.domain}:${this.httpsPort}`;
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<EdgeResponse> {
    const payload =
      options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const headers: Record<string, string> = {
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    };
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.origin}${path}`,
        { method, headers, agent: this.agent, lookup: loopback },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const json = /json/.test(String(res.headers['content-type'])) && text.length > 0;
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: json ? JSON.parse(text) : text,
              ms: performance.now() - started,
            });
          });
        },
      );
      req.setTimeout(options.timeoutMs ?? 30_000, () =>
        req.destroy(new Error(`${method} ${path}: no answer in ${options.timeoutMs ?? 30_000} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** One HTTP/2 request; returns the negotiated ALPN protocol and the status. */
  http2Get(path: string): Promise<{ alpn: string | false | undefined; status: number }> {
    return new Promise((resolve, reject) => {
      const session = connectHttp2(this.origin, { ca: this.ca, lookup: loopback });
      session.on('error', reject);
      session.on('connect', () => {
        const stream = session.request({ ':path': path });
        let status = 0;
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.on('end', () => {
          const alpn = session.alpnProtocol;
          session.close();
          resolve({ alpn, status });
        });
      });
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface Account {
  email: string;
  token: string;
  taskIds: string[];
}

/** Registers an account and creates `tasks` tasks for it, through the edge. */
export async function seedAccount(client: EdgeClient, email: string, tasks: number) {
  const registered = await client.request('POST', '/api/v1/auth/register', {
    body: { email, password: 'correct horse battery staple' },
  });
  if (registered.status !== 201) {
    throw new Error(`register ${email}: ${registered.status} ${JSON.stringify(registered.body)}`);
  }
  const account: Account = { email, token: registered.body.token, taskIds: [] };
  for (let i = 0; i < tasks; i++) {
    const created = await client.request('POST', '/api/v1/tasks', {
      token: account.token,
      body: { title: `task ${i} of ${email}` },
    });
    if (created.status !== 201) throw new Error(`create task: ${created.status}`);
    account.taskIds.push(created.body.id);
  }
  return account;
}

export interface LoadReport {
  sent: number;
  failed: number;
  /** The first failures, for the assertion message. */
  failures: string[];
  byKind: Record<string, number>;
  longestMs: number;
  latenciesMs: number[];
}

/**
 * Constant load through the edge until `stop` aborts it (or `maxRequests` is reached): `connections`
 * loops, each sending reads, lists, idempotent creates (with an Idempotency-Key, some replayed) and
 * PATCHes, one after the other. A request fails when it errors, times out or gets a status other
 * than the one its kind must get. No retries: a failure is a failure.
 */
export async function runLoad(
  client: EdgeClient,
  accounts: Account[],
  {
    connections,
    stop,
    maxRequests = 200_000,
  }: {
    connections: number;
    stop: AbortSignal;
    maxRequests?: number;
  },
): Promise<LoadReport> {
  const report: LoadReport = {
    sent: 0,
    failed: 0,
    failures: [],
    byKind: {},
    longestMs: 0,
    latenciesMs: [],
  };
  const kinds = ['read', 'list', 'create', 'replay', 'patch'] as const;
  const loop = async (worker: number) => {
    let lastKey: { key: string; title: string } | undefined;
    for (let i = worker; !stop.aborted && report.sent < maxRequests; i++) {
      const account = accounts[i % accounts.length]!;
      const taskId = account.taskIds[i % account.taskIds.length]!;
      const kind = kinds[i % kinds.length]!;
      let call: Promise<EdgeResponse>;
      let expected: number;
      switch (kind) {
        case 'read':
          call = client.request('GET', `/api/v1/tasks/${taskId}`, { token: account.token });
          expected = 200;
          break;
        case 'list':
          call = client.request('GET', '/api/v1/tasks?limit=20', { token: account.token });
          expected = 200;
          break;
        case 'create':
        case 'replay': {
          // A replay sends the previous key and body again: the first answer comes back.
          if (kind === 'create' || !lastKey) {
            lastKey = { key: randomUUID(), title: `load ${worker}-${i}` };
          }
          call = client.request('POST', '/api/v1/tasks', {
            token: account.token,
            headers: { 'idempotency-key': lastKey.key },
            body: { title: lastKey.title },
          });
          expected = 201;
          break;
        }
        case 'patch':
          call = client.request('PATCH', `/api/v1/tasks/${taskId}`, {
            token: account.token,
            body: { notes: `patched ${i}` },
          });
          expected = 200;
          break;
      }
      report.sent++;
      report.byKind[kind] = (report.byKind[kind] ?? 0) + 1;
      try {
        const response = await call;
        report.latenciesMs.push(response.ms);
        report.longestMs = Math.max(report.longestMs, response.ms);
        if (response.status !== expected) {
          throw new Error(`${response.status} ${JSON.stringify(response.body).slice(0, 200)}`);
        }
      } catch (error) {
        report.failed++;
        if (report.failures.length < 10) {
          report.failures.push(
            `${kind}: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, worker) => loop(worker)));
  return report;
}
