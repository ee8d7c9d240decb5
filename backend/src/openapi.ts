import { z } from 'zod';
import {
  credentialsSchema,
  registrationSchema,
  sessionSchema,
  userSchema,
} from './auth/schemas.ts';
import {
  createTaskSchema,
  listQuerySchema,
  taskListSchema,
  taskSchema,
  updateTaskSchema,
} from './tasks/schemas.ts';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that validate requests and type
 * responses, so the contract cannot drift from the code. Served at GET /api/openapi.json.
 */

const problemSchema = z
  .object({
    type: z.string().describe('A URI that identifies the problem type; switch on this'),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    errors: z
      .array(
        z.object({
          name: z.string().describe('The field, query parameter or header at fault'),
          in: z.enum(['body', 'query', 'path', 'header']),
          reason: z.string(),
        }),
      )
      .optional()
      .describe('One entry per field problem (validation errors only)'),
  })
  .meta({ id: 'Problem' });

const healthSchema = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    version: z.string().describe('The build that answered (APP_VERSION)'),
    database: z.enum(['ok', 'unavailable']).optional(),
    migrations: z.enum(['ok', 'pending']).optional(),
    shutdown: z.enum(['no', 'in progress']).optional(),
  })
  .meta({ id: 'Health' });

const componentSchemas = [
  problemSchema,
  healthSchema,
  credentialsSchema,
  userSchema,
  sessionSchema,
  registrationSchema,
  taskSchema,
  createTaskSchema,
  updateTaskSchema,
  taskListSchema,
];

const ref = (schema: z.ZodType) => ({
  $ref: `#/components/schemas/${String(z.globalRegistry.get(schema)?.id)}`,
});
const json = (schema: z.ZodType, description: string, headers?: Record<string, unknown>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: ref(schema) } },
});
const problem = (description: string, headers?: Record<string, unknown>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/problem+json': { schema: ref(problemSchema) } },
});
const header = (description: string, schema: Record<string, unknown> = { type: 'string' }) => ({
  description,
  schema,
});
const body = (schema: z.ZodType) => ({
  required: true,
  content: { 'application/json': { schema: ref(schema) } },
});

const etag = header('The task version as a strong entity tag, e.g. "3"');
const retryAfter = header('Seconds to wait before retrying', { type: 'integer' });
const common = {
  '400': problem('The request is not valid; `errors` lists each field problem'),
  '415': problem('The body is not application/json'),
  '413': problem('The body is larger than 1 MB'),
  '503': problem('The database is unavailable; retry later', { 'Retry-After': retryAfter }),
};
const authFailure = {
  '401': problem('Missing, invalid, expired or revoked bearer token', {
    'WWW-Authenticate': header('Always `Bearer realm="api"`'),
  }),
};
const limited = {
  '429': problem('Too many attempts from this address or for this email', {
    'Retry-After': retryAfter,
  }),
};
const secured = [{ bearer: [] }];
const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', format: 'uuid' },
};

function queryParameters(schema: z.ZodObject) {
  const jsonSchema = z.toJSONSchema(schema, { io: 'input' }) as {
    properties: Record<string, object>;
  };
  return Object.entries(jsonSchema.properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: s,
  }));
}

function components(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const schema of componentSchemas)
    registry.add(schema, { id: String(z.globalRegistry.get(schema)?.id) });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Record<string, unknown>> };
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return schemas;
}

type Operations = Record<string, unknown>;

/**
 * Any request can be refused before it reaches its route: a body that is not JSON, too large or
 * malformed, or a database that is down. Every operation documents those answers too, so that a
 * generated client knows their shape.
 */
function withCommonProblems(paths: Record<string, Operations>): Record<string, Operations> {
  for (const item of Object.values(paths)) {
    for (const operation of Object.values(item)) {
      const op = operation as { responses?: Record<string, unknown> };
      if (op.responses) op.responses = { ...common, ...op.responses };
    }
  }
  return paths;
}

export function buildOpenApiDocument(version: string): Record<string, unknown> {
  const health = (summary: string) => ({
    get: {
      tags: ['health'],
      summary,
      responses: {
        '200': json(healthSchema, 'Healthy'),
        '503': json(healthSchema, 'Not ready; the body says why'),
      },
    },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tasks backend',
      version,
      description:
        'Accounts and to-do tasks for mobile clients. Errors are RFC 9457 problem details.',
    },
    servers: [{ url: '/' }],
    components: {
      schemas: components(),
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'Opaque token from register or login',
        },
      },
    },
    paths: withCommonProblems({
      '/api/health/live': {
        get: {
          tags: ['health'],
          summary: 'Liveness: 200 while the process runs; never touches the database',
          responses: { '200': json(healthSchema, 'Alive') },
        },
      },
      '/api/health/ready': health(
        'Readiness: 200 when the database answers, migrations are applied and no shutdown is under way',
      ),
      '/api/health': health('Same as /api/health/ready'),
      '/api/v1/auth/register': {
        post: {
          tags: ['auth'],
          summary: 'Create an account and a session',
          requestBody: body(credentialsSchema),
          responses: {
            '201': json(registrationSchema, 'Account created'),
            ...common,
            '409': problem('An account with this email already exists'),
            ...limited,
          },
        },
      },
      '/api/v1/auth/login': {
        post: {
          tags: ['auth'],
          summary: 'Start a session',
          requestBody: body(credentialsSchema),
          responses: {
            '200': json(sessionSchema, 'Session started'),
            ...common,
            '401': problem('Email or password is wrong (the same answer for both)'),
            ...limited,
          },
        },
      },
      '/api/v1/auth/logout': {
        post: {
          tags: ['auth'],
          summary: 'End this session; the token stops working at once',
          security: secured,
          responses: {
            '204': { description: 'Session ended' },
            ...authFailure,
            '503': common['503'],
          },
        },
      },
      '/api/v1/me': {
        get: {
          tags: ['auth'],
          summary: 'The current user',
          security: secured,
          responses: { '200': json(userSchema, 'The user'), ...authFailure, '503': common['503'] },
        },
      },
      '/api/v1/tasks': {
        get: {
          tags: ['tasks'],
          summary: 'List tasks, newest first, one page at a time (keyset pagination)',
          security: secured,
          parameters: queryParameters(listQuerySchema),
          responses: {
            '200': json(taskListSchema, 'A page of tasks'),
            '400': common['400'],
            ...authFailure,
            '503': common['503'],
          },
        },
        post: {
          tags: ['tasks'],
          summary: 'Create a task',
          security: secured,
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              description:
                'Retry-safe creation: the same key and body within 24 h replays the first response',
              schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
            },
          ],
          requestBody: body(createTaskSchema),
          responses: {
            '201': json(
              taskSchema,
              'Task created (or, with a reused Idempotency-Key, the first response replayed)',
              {
                Location: header('The new task'),
                ETag: etag,
                'Idempotent-Replayed': header('`true` when this is a replayed response'),
              },
            ),
            ...common,
            ...authFailure,
            '422': problem('The Idempotency-Key was already used with a different body'),
          },
        },
      },
      '/api/v1/tasks/{id}': {
        parameters: [idParam],
        get: {
          tags: ['tasks'],
          summary: 'Read a task',
          security: secured,
          parameters: [
            { name: 'If-None-Match', in: 'header', required: false, schema: { type: 'string' } },
          ],
          responses: {
            '200': json(taskSchema, 'The task', { ETag: etag }),
            '304': { description: 'Not modified (If-None-Match matched)', headers: { ETag: etag } },
            '400': problem('The id is not a UUID'),
            ...authFailure,
            '404': problem('No such task (or not yours)'),
            '503': common['503'],
          },
        },
        patch: {
          tags: ['tasks'],
          summary: 'Change some fields of a task',
          security: secured,
          parameters: [
            {
              name: 'If-Match',
              in: 'header',
              required: false,
              description: 'Apply only if the task still has this ETag',
              schema: { type: 'string' },
            },
          ],
          requestBody: body(updateTaskSchema),
          responses: {
            '200': json(taskSchema, 'The changed task', { ETag: etag }),
            ...common,
            ...authFailure,
            '404': problem('No such task (or not yours)'),
            '412': problem('The task changed since the If-Match version'),
          },
        },
        delete: {
          tags: ['tasks'],
          summary: 'Delete a task',
          security: secured,
          responses: {
            '204': { description: 'Deleted' },
            '400': problem('The id is not a UUID'),
            ...authFailure,
            '404': problem('No such task (or not yours)'),
            '503': common['503'],
          },
        },
      },
    }),
  };
}
