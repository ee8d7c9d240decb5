import type { Express } from 'express';
import { describe, expect, it } from 'vitest';
import { apiDocument } from '../src/app.ts';
import { expectConformance } from './support/api.ts';
import { useTestApp } from './support/test-app.ts';

/**
 * Every response in the suite passes through expectConformance (support/api.ts). These tests
 * show that check has teeth, that the served document is the generated one, and that the
 * operations Express serves are exactly those the document names.
 */

const { client, app } = useTestApp();

/** A response as GET /api/v1/tasks/{id} would send it, apart from what a test changes. */
const fake = (
  status: number,
  body: unknown,
  contentType = 'application/json',
  cacheControl = contentType.includes('problem') ? 'no-store' : 'private, no-cache',
) => ({
  status,
  headers: new Headers({
    'content-type': contentType,
    'cache-control': cacheControl,
    etag: '"1"',
    location: '/x',
  }),
  body,
  text: JSON.stringify(body),
});

describe('OpenAPI contract', () => {
  it('serves the document generated from the validation schemas', async () => {
    const res = await client.get('/api/openapi.json');
    expect(res.body).toEqual(apiDocument('test'));
    expect(res.body.components.schemas.NewTask.properties.title).toMatchObject({
      minLength: 1,
      maxLength: 200,
    });
    expect(res.body.components.schemas.NewTask.additionalProperties).toBe(false);
  });

  it('when a real task response is checked, then it conforms', async () => {
    const { token } = await client.register();
    const res = await client.post('/api/v1/tasks', { token, body: { title: 'conform' } });
    expect(() => expectConformance('POST', '/api/v1/tasks', res)).not.toThrow();
  });

  it('when a body lacks a promised field, then the check fails', async () => {
    const { token } = await client.register();
    const res = await client.post('/api/v1/tasks', { token, body: { title: 'conform' } });
    const { version: _dropped, ...withoutVersion } = res.body;
    expect(() =>
      expectConformance('GET', `/api/v1/tasks/${res.body.id}`, fake(200, withoutVersion)),
    ).toThrow(/does not match/);
  });

  it('when a response may be stored although the document says otherwise, then the check fails', async () => {
    const { token } = await client.register();
    const task = (await client.post('/api/v1/tasks', { token, body: { title: 'cache' } })).body;
    const res = fake(200, task, 'application/json', 'max-age=3600');
    expect(() => expectConformance('GET', `/api/v1/tasks/${task.id}`, res)).toThrow(
      /header Cache-Control/,
    );
  });

  it('when a status is not documented, then the check fails', () => {
    expect(() => expectConformance('DELETE', '/api/v1/tasks/abc', fake(418, {}))).toThrow(
      /not documented/,
    );
  });

  it('when a problem is sent as plain JSON, then the check fails', () => {
    const problem = { type: 'urn:x', title: 't', status: 404, detail: 'd' };
    const res = fake(404, problem, 'application/json', 'no-store');
    expect(() => expectConformance('GET', '/api/v1/tasks/abc', res)).toThrow(
      /documented: application\/problem\+json/,
    );
  });

  it('when the app is built, then its mounted routes are exactly the documented operations', () => {
    const documented = Object.entries(apiDocument('test').paths as Record<string, object>)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`))
      .sort();
    expect(mountedRoutes(app().express)).toEqual(documented);
    expect(documented.length).toBeGreaterThan(10);
  });

  it('when an operation is served but not documented, then the check fails', () => {
    const problem = { type: 'urn:x', title: 't', status: 200, detail: 'd' };
    expect(() => expectConformance('PUT', '/api/v1/tasks', fake(200, problem))).toThrow(
      /not in the document, so it must not be served/,
    );
  });

  it('when a problem type is not one the response documents, then the check fails', () => {
    const problem = {
      type: 'urn:tasks-backend:problem:conflict',
      title: 'Conflict',
      status: 404,
      detail: 'd',
    };
    expect(() =>
      expectConformance('GET', '/api/v1/tasks/abc', fake(404, problem, 'application/problem+json')),
    ).toThrow(/does not match/);
  });
});

/** `method /openapi/{path}` of every route Express has mounted, in any router. */
function mountedRoutes(app: Express): string[] {
  type Layer = {
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  };
  const walk = (stack: Layer[]): string[] =>
    stack.flatMap((layer) =>
      layer.route
        ? Object.keys(layer.route.methods).map(
            (method) => `${method} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`,
          )
        : walk(layer.handle?.stack ?? []),
    );
  return walk((app as unknown as { router: { stack: Layer[] } }).router.stack).sort();
}
