import { z } from 'zod';
import type { ErrorCode } from '../errors.ts';
import { problemHeaders, problemSchema, problemTypes, problemTypeUri } from './problems.ts';
import { routeProblems, type AnyRoute, type HeaderSpec } from './routes.ts';

/**
 * The OpenAPI 3.1 document, derived from the route tables and their zod schemas: the routes
 * Express mounts are exactly the operations documented, with the schemas that validate them.
 * Served at GET /api/openapi.json.
 */

type Json = Record<string, unknown>;

export interface DocumentOptions {
  readonly version: string;
  /** A description for each tag the routes use. */
  readonly tags: Readonly<Record<string, string>>;
}

const schemaId = (schema: z.ZodType): string | undefined => {
  const id = z.globalRegistry.get(schema)?.id;
  return typeof id === 'string' ? id : undefined;
};

const ref = (schema: z.ZodType, where: string): Json => {
  const id = schemaId(schema);
  if (!id) throw new Error(`${where}: its schema needs .meta({ id }) to be a named component`);
  return { $ref: `#/components/schemas/${id}` };
};

/** A schema for a single value (a parameter or a header), inline. */
function inline(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Json;
  delete json['$schema'];
  return json;
}

function components(schemas: readonly z.ZodType[]): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const schema of new Set(schemas)) registry.add(schema, { id: schemaId(schema)! });
  const { schemas: generated } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Json> };
  for (const schema of Object.values(generated)) {
    delete schema['$schema'];
    delete schema['$id'];
  }
  return generated;
}

const headerObject = (spec: HeaderSpec): Json => ({
  description: spec.description,
  schema: spec.schema ? inline(spec.schema) : { type: 'string' },
});

export const rateLimitHeaderSpecs: Record<'RateLimit-Policy' | 'RateLimit', HeaderSpec> = {
  'RateLimit-Policy': {
    description:
      'The limit (IETF draft-ietf-httpapi-ratelimit-headers), e.g. `"auth";q=10;w=60`: 10 requests per 60 s',
  },
  RateLimit: {
    description: 'Where the client stands, e.g. `"auth";r=3;t=42`: 3 left, the window ends in 42 s',
  },
};

const problemHeaderSpecs: Record<string, HeaderSpec> = {
  'Cache-Control': { description: 'Always `no-store`' },
  'WWW-Authenticate': { description: 'Always `Bearer realm="api"`' },
  'Retry-After': { description: 'Seconds to wait before retrying', schema: z.int().min(0) },
  ...rateLimitHeaderSpecs,
};

/** The problem answers of one status: their types, and the headers they always carry. */
function problemResponse(codes: readonly ErrorCode[]): Json {
  const headers = [...new Set(codes.flatMap(problemHeaders))];
  return {
    description: codes.map((code) => `\`${code}\`: ${problemTypes[code].title}`).join('; '),
    ...(headers.length > 0 && {
      headers: Object.fromEntries(headers.map((h) => [h, headerObject(problemHeaderSpecs[h]!)])),
    }),
    content: {
      'application/problem+json': {
        schema: {
          allOf: [
            { $ref: '#/components/schemas/Problem' },
            { properties: { type: { enum: codes.map(problemTypeUri) } } },
          ],
        },
      },
    },
  };
}

function parameters(spec: AnyRoute<never>): Json[] {
  const fromObject = (schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] => {
    if (!schema) return [];
    const json = inline(schema) as { properties?: Record<string, Json>; required?: string[] };
    return Object.entries(json.properties ?? {}).map(([name, property]) => {
      const { description, ...rest } = property;
      return {
        name,
        in: where,
        required: where === 'path' || (json.required ?? []).includes(name),
        ...(description !== undefined && { description }),
        schema: rest,
      };
    });
  };
  return [
    ...fromObject(spec.params, 'path'),
    ...fromObject(spec.query, 'query'),
    ...Object.entries(spec.headers ?? {}).map(([name, header]) => ({
      name,
      in: 'header',
      required: false,
      description: header.description,
      schema: inline(header.schema),
    })),
  ];
}

function operation(spec: AnyRoute<never>): Json {
  const where = `${spec.method.toUpperCase()} ${spec.path}`;
  const responses: Record<string, Json> = {};
  const cacheControl: HeaderSpec = { description: `Always \`${spec.cache ?? 'no-store'}\`` };
  for (const [status, response] of Object.entries(spec.responses)) {
    const headers = { 'Cache-Control': cacheControl, ...response.headers };
    responses[status] = {
      description: response.description,
      headers: Object.fromEntries(
        Object.entries(headers).map(([name, h]) => [name, headerObject(h)]),
      ),
      ...(response.body && {
        content: { 'application/json': { schema: ref(response.body, `${where} → ${status}`) } },
      }),
    };
  }
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of routeProblems(spec)) {
    const { status } = problemTypes[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    if (responses[status]) throw new Error(`${where}: ${status} is both a reply and a problem`);
    responses[status] = problemResponse(codes);
  }
  const params = parameters(spec);
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description && { description: spec.description }),
    tags: spec.tags,
    security: spec.auth ? [{ bearer: [] }] : [],
    ...(params.length > 0 && { parameters: params }),
    ...(spec.body && {
      requestBody: {
        required: true,
        content: { 'application/json': { schema: ref(spec.body, `${where} request body`) } },
      },
    }),
    responses: Object.fromEntries(
      Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)),
    ),
  };
}

function catalogue(): string {
  const rows = Object.entries(problemTypes).map(
    ([code, { status, title }]) =>
      `| \`${problemTypeUri(code as ErrorCode)}\` | ${status} | ${title} |`,
  );
  return ['| type | status | title |', '|---|---|---|', ...rows].join('\n');
}

export function buildOpenApiDocument(
  routes: readonly AnyRoute<never>[],
  options: DocumentOptions,
): Json {
  const paths: Record<string, Record<string, Json>> = {};
  const schemas: z.ZodType[] = [problemSchema];
  const operationIds = new Set<string>();
  for (const spec of routes) {
    if (operationIds.has(spec.operationId))
      throw new Error(`duplicate operationId ${spec.operationId}`);
    operationIds.add(spec.operationId);
    if (spec.body) schemas.push(spec.body);
    for (const response of Object.values(spec.responses)) {
      if (response.body) schemas.push(response.body);
    }
    const item = (paths[spec.path] ??= {});
    if (item[spec.method])
      throw new Error(`${spec.method.toUpperCase()} ${spec.path} declared twice`);
    item[spec.method] = operation(spec);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tasks backend',
      version: options.version,
      description: [
        'Accounts and to-do tasks for mobile clients.',
        '',
        'Errors are RFC 9457 problem details (`application/problem+json`); switch on `type`:',
        '',
        catalogue(),
      ].join('\n'),
    },
    servers: [{ url: '/' }],
    tags: Object.entries(options.tags).map(([name, description]) => ({ name, description })),
    components: {
      schemas: components(schemas),
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'Opaque token from register or login',
        },
      },
    },
    paths,
  };
}
