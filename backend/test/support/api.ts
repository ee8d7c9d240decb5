import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { expect } from 'vitest';
import { apiDocument } from '../../src/app.ts';

/**
 * An HTTP client for tests that checks every response against the OpenAPI document the server
 * publishes: a status, content type, header or body field the document does not promise fails
 * the test that caused it. This is the contract test: it runs on every request of the suite.
 */

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Sent as-is, with the headers given (no JSON encoding). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

type Operation = {
  responses: Record<
    string,
    { headers?: Record<string, unknown>; content?: Record<string, { schema: object }> }
  >;
};
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, object> };
};

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const doc = apiDocument('test') as unknown as Doc;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
ajv.addSchema({ $id: 'openapi.json', components: doc.components });
const validators = new Map<string, ValidateFunction>();
// Concrete paths before templated ones, as OpenAPI matches them (`/tasks/changes`, `/tasks/{id}`).
const routes = Object.keys(doc.paths)
  .sort((a, b) => Number(a.includes('{')) - Number(b.includes('{')))
  .map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
/** Headers whose presence the document promises and the check holds it to. */
const checkedHeaders = ['ETag', 'Location', 'Retry-After', 'RateLimit-Policy', 'RateLimit'];
/** Test-only routes (ENABLE_TEST_ROUTES) are outside the API and its document. */
const testRoutePrefix = '/api/_test/';

const decodes = (path: string): boolean => {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
};

/** A response schema, with its references pointed at the document's components. */
const compile = (schema: object): ValidateFunction =>
  ajv.compile(
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi.json#/components/')),
  );

/**
 * Asserts that a response is one the OpenAPI document describes for this method and path; an
 * operation the document does not name must not exist (404 route-not-found).
 */
export function expectConformance(method: string, url: string, res: ApiResponse): void {
  const path = new URL(url, 'http://x').pathname;
  const route = routes.find((r) => r.pattern.test(path));
  const operation = route && doc.paths[route.template]?.[method.toLowerCase()];
  if (!route || !operation) {
    if (path.startsWith(testRoutePrefix)) return;
    // The router refuses a path it cannot percent-decode before it knows whether a route matches.
    if (!decodes(path)) {
      expect(res.status, `${method} ${path} is not valid percent-encoding`).toBe(400);
      return;
    }
    expect(
      [res.status, (res.body as { type?: string } | undefined)?.type],
      `${method} ${path} is not in the document, so it must not be served`,
    ).toEqual([404, 'urn:tasks-backend:problem:route-not-found']);
    return;
  }
  const where = `${method} ${route.template} → ${res.status}`;
  const documented = operation.responses[String(res.status)];
  expect(documented, `${where} is not documented`).toBeDefined();
  for (const name of Object.keys(documented!.headers ?? {})) {
    const always = /^Always `(.*)`$/.exec(
      (documented!.headers![name] as { description?: string }).description ?? '',
    )?.[1];
    if (always !== undefined) {
      expect(res.headers.get(name), `${where}: header ${name}`).toBe(always.replaceAll('`', ''));
    } else if (checkedHeaders.includes(name)) {
      expect(res.headers.get(name), `${where} lacks header ${name}`).not.toBeNull();
    }
  }
  if (!documented!.content) {
    expect(res.text, `${where} should have no body`).toBe('');
    return;
  }
  const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!;
  const media = documented!.content[contentType];
  expect(
    media,
    `${where} answered ${contentType}, documented: ${Object.keys(documented!.content).join(', ')}`,
  ).toBeDefined();
  const key = `${where} ${contentType}`;
  let validate = validators.get(key);
  if (!validate) {
    validate = compile(media!.schema);
    validators.set(key, validate);
  }
  expect(
    validate(res.body) ? [] : validate.errors,
    `${where} body does not match the document`,
  ).toEqual([]);
}

export function api(baseUrl: string | (() => string)) {
  const base = typeof baseUrl === 'string' ? () => baseUrl : baseUrl;
  const request = async <T = any>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers['authorization'] = `Bearer ${options.token}`;
    let body: string | Buffer | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${base()}${path}`, { method, headers, body });
    const text = await response.text();
    const json =
      /json/.test(response.headers.get('content-type') ?? '') && text
        ? (JSON.parse(text) as T)
        : (text as T);
    const result = { status: response.status, headers: response.headers, body: json, text };
    expectConformance(method, path, result);
    return result;
  };
  return {
    request,
    get: <T = any>(path: string, options?: RequestOptions) => request<T>('GET', path, options),
    post: <T = any>(path: string, options?: RequestOptions) => request<T>('POST', path, options),
    patch: <T = any>(path: string, options?: RequestOptions) => request<T>('PATCH', path, options),
    delete: <T = any>(path: string, options?: RequestOptions) =>
      request<T>('DELETE', path, options),

    /** Registers a fresh user; returns its token and id. */
    async register(
      email = `user-${Math.random().toString(36).slice(2)}@example.com`,
      password = 'correct horse battery',
    ) {
      const res = await request<{ token: string; user: { id: string; email: string } }>(
        'POST',
        '/api/v1/auth/register',
        {
          body: { email, password },
        },
      );
      expect(res.status).toBe(201);
      return { token: res.body.token, id: res.body.user.id, email, password };
    },
  };
}

export type Api = ReturnType<typeof api>;
