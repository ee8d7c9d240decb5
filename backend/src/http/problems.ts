import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { pgErrorCode } from '../db.ts';
import { AppError, type ErrorCode, type FieldProblem } from '../errors.ts';
import type { RateLimitState } from '../rate-limit/service.ts';

/**
 * The catalogue of problem types: every error code the application raises, with the HTTP status
 * and title it is answered with. The OpenAPI document lists it, and `problemHandler` is the only
 * place that writes an `application/problem+json` answer (RFC 9457).
 */

export interface ProblemType {
  readonly status: number;
  readonly title: string;
}

export const problemTypes: Readonly<Record<ErrorCode, ProblemType>> = {
  'validation-error': { status: 400, title: 'Request is not valid' },
  'malformed-json': { status: 400, title: 'Malformed JSON' },
  'invalid-value': { status: 400, title: 'Invalid value' },
  'request-aborted': { status: 400, title: 'Request aborted' },
  'bad-request': { status: 400, title: 'Bad request' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'unsupported-encoding': { status: 415, title: 'Unsupported content encoding' },
  'unsupported-charset': { status: 415, title: 'Unsupported charset' },
  'route-not-found': { status: 404, title: 'Not found' },
  unauthorized: { status: 401, title: 'Authentication required' },
  // Not 401: the token is fine, and a client that signs out on 401 must not do so here.
  'wrong-password': { status: 403, title: 'Current password is wrong' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'not-found': { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  'precondition-failed': { status: 412, title: 'Precondition failed' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency key reused' },
  'task-deleted': { status: 409, title: 'Task was deleted' },
  'sync-token-expired': { status: 410, title: 'Sync token expired: resync from scratch' },
  'database-unavailable': { status: 503, title: 'Service temporarily unavailable' },
  'database-timeout': { status: 503, title: 'Service temporarily unavailable' },
  internal: { status: 500, title: 'Internal server error' },
};

export const problemTypeUri = (code: ErrorCode): string => `urn:tasks-backend:problem:${code}`;

const problemContentType = 'application/problem+json; charset=utf-8';

export const problemSchema = z
  .object({
    type: z
      .enum(Object.keys(problemTypes).map((code) => problemTypeUri(code as ErrorCode)))
      .describe(
        'Identifies the problem type (see the catalogue in the description); switch on this',
      ),
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

/** Response headers a problem of this code always carries. */
export function problemHeaders(code: ErrorCode): readonly string[] {
  const always = ['Cache-Control'];
  if (code === 'unauthorized') return [...always, 'WWW-Authenticate'];
  if (code === 'rate-limited') return [...always, 'Retry-After', 'RateLimit-Policy', 'RateLimit'];
  if (code === 'database-unavailable' || code === 'database-timeout') {
    return [...always, 'Retry-After'];
  }
  return always;
}

/**
 * The IETF httpapi RateLimit headers (draft-ietf-httpapi-ratelimit-headers):
 * `RateLimit-Policy: "auth";q=10;w=60` and `RateLimit: "auth";r=3;t=42`.
 */
export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    'RateLimit-Policy': `"${state.policy}";q=${state.limit};w=${state.windowSeconds}`,
    RateLimit: `"${state.policy}";r=${state.remaining};t=${state.resetSeconds}`,
  };
}

export function sendProblem(
  res: Response,
  code: ErrorCode,
  detail: string,
  errors?: readonly FieldProblem[],
): void {
  const { status, title } = problemTypes[code];
  res
    .status(status)
    .type(problemContentType)
    .send(
      JSON.stringify({
        type: problemTypeUri(code),
        title,
        status,
        detail,
        ...(errors ? { errors } : {}),
      }),
    );
}

export const routeNotFound: RequestHandler = (req) => {
  throw new AppError('route-not-found', `No route for ${req.method} ${req.path}`);
};

/** Errors raised by body-parser carry a `type`; these are the client's fault. */
const bodyParserProblems: Record<string, (err: { limit?: unknown }) => AppError> = {
  'entity.too.large': (err) =>
    new AppError(
      'payload-too-large',
      `The request body exceeds this operation's limit of ${Number(err.limit)} bytes.`,
    ),
  'entity.parse.failed': () =>
    new AppError('malformed-json', 'The request body is not valid JSON.'),
  'encoding.unsupported': () =>
    new AppError('unsupported-encoding', 'The request body uses an unsupported Content-Encoding.'),
  'charset.unsupported': () =>
    new AppError('unsupported-charset', 'The request body must be UTF-8 JSON.'),
  'request.aborted': () => new AppError('request-aborted', 'The client aborted the request body.'),
  'request.size.invalid': () =>
    new AppError('bad-request', 'The request body length does not match Content-Length.'),
};

/** Whatever was thrown, as an AppError: known client errors keep their meaning, the rest is ours. */
function asAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const httpErr = (typeof err === 'object' && err !== null ? err : {}) as {
    type?: unknown;
    status?: unknown;
    statusCode?: unknown;
    limit?: unknown;
  };
  const { type, status, statusCode } = httpErr;
  const known = typeof type === 'string' ? bodyParserProblems[type] : undefined;
  if (known) return known(httpErr);
  const httpStatus = Number(status ?? statusCode);
  if (Number.isInteger(httpStatus) && httpStatus >= 400 && httpStatus < 500) {
    // e.g. the router's 400 for a path that is not valid percent-encoding.
    return new AppError('bad-request', 'The request could not be understood.');
  }
  return new AppError('internal', 'An unexpected error occurred.', {}, { cause: err });
}

export const problemHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  if (res.headersSent) {
    // Too late to answer with a problem; make sure the socket does not hang.
    req.log.error({ err }, 'error after response started');
    res.destroy();
    return;
  }
  const problem = asAppError(err);
  const { status } = problemTypes[problem.code];
  // The request's own log line (http/pipeline.ts) carries the cause: one line per request, not two.
  if (status >= 500) res.err = (problem.cause as Error | undefined) ?? problem;
  if (problem.code === 'invalid-value') {
    req.log.warn(
      { code: pgErrorCode(problem.cause) },
      'database refused a value that passed validation',
    );
  }
  // A refusal is about this request at this moment: nothing may keep it.
  res.setHeader('Cache-Control', 'no-store');
  if (problem.code === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer realm="api"');
  if (problem.details.rateLimit) {
    for (const [name, value] of Object.entries(rateLimitHeaders(problem.details.rateLimit))) {
      res.setHeader(name, value);
    }
  }
  if (problem.details.retryAfterSeconds !== undefined) {
    res.setHeader('Retry-After', String(problem.details.retryAfterSeconds));
  }
  sendProblem(res, problem.code, problem.detail, problem.details.errors);
};
