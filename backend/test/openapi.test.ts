import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../src/openapi.ts';
import { api, expectConformance, type Api } from './support/api.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

/**
 * Every response in the suite passes through expectConformance (support/api.ts). These tests
 * show that check has teeth, and that the served document is the generated one.
 */

let app: TestApp;
let client: Api;

beforeAll(async () => {
  app = await startTestApp();
  client = api(app.baseUrl);
});
afterAll(() => app.close());

const fake = (status: number, body: unknown, contentType = 'application/json') => ({
  status,
  headers: new Headers({ 'content-type': contentType, etag: '"1"', location: '/x' }),
  body,
  text: JSON.stringify(body),
});

describe('OpenAPI contract', () => {
  it('serves the document generated from the validation schemas', async () => {
    const res = await client.get('/api/openapi.json');
    expect(res.body).toEqual(buildOpenApiDocument('test'));
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

  it('when a status is not documented, then the check fails', () => {
    expect(() => expectConformance('DELETE', '/api/v1/tasks/abc', fake(418, {}))).toThrow(
      /not documented/,
    );
  });

  it('when a problem is sent as plain JSON, then the check fails', () => {
    const problem = { type: 'urn:x', title: 't', status: 404, detail: 'd' };
    expect(() => expectConformance('GET', '/api/v1/tasks/abc', fake(404, problem))).toThrow(
      /documented: application\/problem\+json/,
    );
  });
});
