import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A test load balancer on 127.0.0.1 that behaves like Kubernetes endpoints: it probes every
 * upstream's readiness every `probePeriodMs` and routes (round robin) only to upstreams whose
 * last probe answered 200. Like a Service, it never retries: a request that fails upstream is a
 * 502 to the client, so the test sees every failure the backend causes.
 */

interface Upstream {
  url: URL;
  ready: boolean;
  probing: boolean;
  agent: http.Agent;
}

export interface LoadBalancer {
  readonly url: string;
  add(baseUrl: string): void;
  remove(baseUrl: string): void;
  /** Upstreams currently routed to. */
  readyUpstreams(): string[];
  /** Requests that got a 502 or 503 from the balancer itself (upstream error, none ready). */
  readonly failures: { reason: string; upstream: string | undefined }[];
  close(): Promise<void>;
}

export async function startLoadBalancer(options: {
  probePeriodMs: number;
  probeTimeoutMs?: number;
}): Promise<LoadBalancer> {
  const upstreams = new Map<string, Upstream>();
  const failures: LoadBalancer['failures'] = [];
  let turn = 0;

  const probe = (upstream: Upstream) => {
    if (upstream.probing) return;
    upstream.probing = true;
    const req = http.get(
      new URL('/api/health/ready', upstream.url),
      { timeout: options.probeTimeoutMs ?? 400, agent: false },
      (res) => {
        res.resume();
        upstream.ready = res.statusCode === 200;
        upstream.probing = false;
      },
    );
    req.on('timeout', () => req.destroy(new Error('probe timeout')));
    req.on('error', () => {
      upstream.ready = false;
      upstream.probing = false;
    });
  };
  const prober = setInterval(() => {
    for (const upstream of upstreams.values()) probe(upstream);
  }, options.probePeriodMs);

  const server = http.createServer((req, res) => {
    const ready = [...upstreams.values()].filter((u) => u.ready);
    if (ready.length === 0) {
      failures.push({ reason: 'no ready upstream', upstream: undefined });
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no ready upstream\n');
      return;
    }
    const upstream = ready[turn++ % ready.length]!;
    const forward = http.request(
      {
        host: upstream.url.hostname,
        port: upstream.url.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: upstream.agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', (err: NodeJS.ErrnoException) => {
      failures.push({ reason: err.code ?? err.message, upstream: upstream.url.origin });
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`upstream error: ${err.code ?? err.message}\n`);
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    failures,
    add(baseUrl) {
      const upstream: Upstream = {
        url: new URL(baseUrl),
        ready: false,
        probing: false,
        agent: new http.Agent({ keepAlive: true }),
      };
      upstreams.set(baseUrl, upstream);
      probe(upstream);
    },
    remove(baseUrl) {
      upstreams.get(baseUrl)?.agent.destroy();
      upstreams.delete(baseUrl);
    },
    readyUpstreams: () => [...upstreams.values()].filter((u) => u.ready).map((u) => u.url.origin),
    async close() {
      clearInterval(prober);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      for (const upstream of upstreams.values()) upstream.agent.destroy();
    },
  };
}
