import { describe, expect, it } from 'vitest';
import { createMetrics } from '../src/metrics.ts';
import { useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();

const scrape = async () => {
  const res = await fetch(app().metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
};

describe('metrics', () => {
  it('when requests were served, then the histogram is labelled by route template, never the raw path', async () => {
    const { token } = await client.register();
    const created = await client.post('/api/v1/tasks', { token, body: { title: 'measure me' } });
    await client.get(`/api/v1/tasks/${created.body.id}`, { token });
    await client.get('/api/does-not-exist/12345');
    await client.get('/api/v1/tasks'); // refused with 401, still measured under its template
    // Routes of the sync and account features, by their templates too.
    await client.get('/api/v1/tasks/changes?limit=5', { token });
    const sessions = await client.get('/api/v1/me/sessions', { token });
    const other = await client.register();
    await client.delete(`/api/v1/me/sessions/${sessions.body.items[0].id}`, {
      token: other.token,
    });
    await client.post('/api/v1/me/password', {
      token: other.token,
      body: { currentPassword: 'not the password', newPassword: 'a brand new password' },
    });

    const text = await scrape();
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(text).toMatch(
      /http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/api\/v1\/tasks\/:id",status_code="200"\} \d+/,
    );
    for (const [method, route, status] of [
      ['POST', '/api/v1/tasks', 201],
      ['GET', '<unmatched>', 404],
      ['GET', '/api/v1/tasks', 401],
      ['GET', '/api/v1/tasks/changes', 200],
      ['GET', '/api/v1/me/sessions', 200],
      ['DELETE', '/api/v1/me/sessions/:id', 404],
      ['POST', '/api/v1/me/password', 403],
    ]) {
      expect(text).toContain(
        `http_request_duration_seconds_count{method="${method}",route="${route}",status_code="${status}"} 1\n`,
      );
    }
    expect(text).not.toContain(created.body.id);
    expect(text).not.toContain(sessions.body.items[0].id);
    expect(text).not.toContain('12345');
  });

  it('when a body is refused (413, 415, malformed JSON) on a real route, then it is measured under that route', async () => {
    const post = (raw: string, contentType: string) =>
      client.post('/api/v1/auth/register', { raw, headers: { 'content-type': contentType } });
    expect((await post('x'.repeat(5000), 'application/json')).status).toBe(413);
    expect((await post('email=a', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect((await post('{"email":', 'application/json')).status).toBe(400);

    const text = await scrape();
    for (const status of ['413', '415', '400']) {
      expect(text).toMatch(
        new RegExp(
          `http_request_duration_seconds_count\\{method="POST",route="/api/v1/auth/register",status_code="${status}"\\} 1`,
        ),
      );
    }
  });

  it('exposes requests in flight, pool gauges, query durations and the app version', async () => {
    const text = await scrape();
    for (const name of [
      'http_requests_in_flight',
      'db_pool_total_connections',
      'db_pool_idle_connections',
      'db_pool_waiting_clients',
      'db_pool_max_connections',
      'app_info',
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} gauge$`, 'm'));
    }
    expect(text).toMatch(/^db_pool_max_connections 10$/m);
    expect(text).toMatch(/^app_info\{version="test",node_version="v\d+/m);
    expect(text).toContain('# TYPE db_query_duration_seconds histogram');
    const queries = /^db_query_duration_seconds_count\{outcome="ok"\} (\d+)$/m.exec(text);
    expect(Number(queries?.[1])).toBeGreaterThan(0);
  });

  it('includes the default process and Node metrics when enabled', async () => {
    const text = await createMetrics({ version: 'x' }).registry.metrics();
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'process_start_time_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
  });

  it('answers 404 for anything but GET /metrics on the metrics port', async () => {
    const scrapeUrl = app().metricsUrl;
    expect((await fetch(scrapeUrl.replace('/metrics', '/'))).status).toBe(404);
    expect((await fetch(scrapeUrl, { method: 'POST' })).status).toBe(404);
  });
});
