import http from 'node:http';

/**
 * A small closed-loop load generator over node:http with keep-alive, for fault tests: every
 * request's outcome is recorded (status, or the socket error), unlike a benchmark tool that
 * only counts. It always stops by itself: at `maxDurationMs`, at `maxRequests`, or on stop().
 */

export interface LoadRequest {
  /** A label for reports: "get", "list", "create"… */
  kind: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface Outcome {
  kind: string;
  /** 0 when there was no HTTP answer (connection refused or reset, timeout). */
  status: number;
  error?: string;
  /** Start, relative to the start of the load, and duration, in milliseconds. */
  at: number;
  /** Start as a wall-clock time (Date.now()). */
  startedAt: number;
  ms: number;
  body: string;
  contentType: string;
}

export interface LoadOptions {
  baseUrl: string;
  concurrency: number;
  /** Builds the n-th request. */
  next: (n: number) => LoadRequest;
  maxDurationMs: number;
  maxRequests?: number;
  /** Per-request limit: a request that takes longer is recorded as an error. */
  requestTimeoutMs?: number;
  /** Keep at most this many response bodies (bytes) per outcome; default 2 KiB. */
  keepBodyBytes?: number;
}

export interface Load {
  readonly outcomes: Outcome[];
  /** Stops sending; resolves once every request in flight has ended. */
  stop(): Promise<Outcome[]>;
  /** Resolves when the load ends by itself or after stop(). */
  readonly done: Promise<Outcome[]>;
}

function send(
  agent: http.Agent,
  url: URL,
  request: LoadRequest,
  timeoutMs: number,
  keepBodyBytes: number,
): Promise<Omit<Outcome, 'at' | 'startedAt' | 'kind'>> {
  const started = performance.now();
  return new Promise((resolve) => {
    const finish = (status: number, body: string, contentType: string, error?: string) =>
      resolve({
        status,
        body,
        contentType,
        ms: performance.now() - started,
        ...(error === undefined ? {} : { error }),
      });
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: request.method,
        path: request.path,
        headers: {
          ...request.headers,
          ...(request.body === undefined
            ? {}
            : {
                'content-type': 'application/json',
                'content-length': String(Buffer.byteLength(request.body)),
              }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          if (kept < keepBodyBytes) chunks.push(chunk);
          kept += chunk.length;
        });
        res.on('end', () =>
          finish(
            res.statusCode ?? 0,
            Buffer.concat(chunks).toString('utf8').slice(0, keepBodyBytes),
            String(res.headers['content-type'] ?? ''),
          ),
        );
        res.on('error', (err) => finish(0, '', '', err.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => finish(0, '', '', err.code ?? err.message));
    req.end(request.body);
  });
}

export function startLoad(options: LoadOptions): Load {
  const url = new URL(options.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const outcomes: Outcome[] = [];
  const started = performance.now();
  const maxRequests = options.maxRequests ?? Number.POSITIVE_INFINITY;
  let stopping = false;
  let issued = 0;
  const deadline = setTimeout(() => (stopping = true), options.maxDurationMs);

  const worker = async () => {
    while (!stopping && issued < maxRequests) {
      const request = options.next(issued++);
      const at = performance.now() - started;
      const startedAt = Date.now();
      const outcome = await send(
        agent,
        url,
        request,
        options.requestTimeoutMs ?? 10_000,
        options.keepBodyBytes ?? 2048,
      );
      outcomes.push({ kind: request.kind, at, startedAt, ...outcome });
    }
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, worker)).then(() => {
    clearTimeout(deadline);
    agent.destroy();
    return outcomes;
  });
  return {
    outcomes,
    done,
    stop() {
      stopping = true;
      return done;
    },
  };
}

/** Outcomes grouped by "kind status" (status 0 shows its error), for assertion messages. */
export function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = `${o.kind} ${o.status || o.error}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** One line of figures for the test log (and the README). */
export function report(test: string, figures: Record<string, unknown>): void {
  console.log(`[resilience] ${test}: ${JSON.stringify(figures)}`);
}
