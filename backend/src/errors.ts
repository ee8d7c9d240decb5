import type { ErrorRequestHandler, RequestHandler, Response } from 'express';

/**
 * Errors carry an HTTP status and a stable code; exactly one middleware (`problemHandler`) turns
 * them into RFC 9457 `application/problem+json`. Routes just throw.
 */

export interface FieldProblem {
  /** Where the problem is: a body field (`title`), a query parameter or a header name. */
  readonly name: string;
  readonly in: 'body' | 'query' | 'path' | 'header';
  readonly reason: string;
}

const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
const problemTypeBase = 'urn:tasks-backend:problem:';

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly extra: {
      readonly errors?: readonly FieldProblem[];
      readonly headers?: Readonly<Record<string, string>>;
    } = {},
  ) {
    super(detail);
    this.name = 'AppError';
  }
}

export const badRequest = (detail: string, errors?: readonly FieldProblem[]) =>
  new AppError(400, 'validation-error', 'Request is not valid', detail, errors ? { errors } : {});
export const unauthorized = (detail: string) =>
  new AppError(401, 'unauthorized', 'Authentication required', detail, {
    headers: { 'WWW-Authenticate': 'Bearer realm="api"' },
  });
export const notFound = (detail: string) => new AppError(404, 'not-found', 'Not found', detail);
export const payloadTooLarge = () =>
  new AppError(
    413,
    'payload-too-large',
    'Payload too large',
    'The request body exceeds the limit of 1 MB.',
  );
export const conflict = (detail: string) => new AppError(409, 'conflict', 'Conflict', detail);
export const preconditionFailed = (detail: string) =>
  new AppError(412, 'precondition-failed', 'Precondition failed', detail);

/** Thrown by the db module when PostgreSQL cannot be reached or does not answer in time. */
export class DatabaseUnavailableError extends AppError {
  constructor(reason: 'unreachable' | 'timeout' | 'migrating', options?: { cause?: unknown }) {
    super(
      503,
      reason === 'timeout' ? 'database-timeout' : 'database-unavailable',
      'Service temporarily unavailable',
      {
        timeout: 'The database did not answer in time. Retry later.',
        unreachable: 'The database is not reachable. Retry later.',
        migrating: 'The database schema is being brought up to date. Retry shortly.',
      }[reason],
      { headers: { 'Retry-After': '1' } },
    );
    if (options?.cause) this.cause = options.cause;
  }
}

function sendProblem(
  res: Response,
  status: number,
  code: string,
  title: string,
  detail: string,
  errors?: readonly FieldProblem[],
): void {
  res
    .status(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(
      JSON.stringify({
        type: `${problemTypeBase}${code}`,
        title,
        status,
        detail,
        ...(errors ? { errors } : {}),
      }),
    );
}

export const routeNotFound: RequestHandler = (req) => {
  throw notFound(`No route for ${req.method} ${req.path}`);
};

/** Errors raised by body-parser and the router carry `type`/`status`; these are the client's fault. */
interface HttpLikeError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  expose?: unknown;
}

const bodyParserProblems: Record<string, () => AppError> = {
  'entity.too.large': payloadTooLarge,
  'entity.parse.failed': () =>
    new AppError(400, 'malformed-json', 'Malformed JSON', 'The request body is not valid JSON.'),
  'encoding.unsupported': () =>
    new AppError(
      415,
      'unsupported-encoding',
      'Unsupported content encoding',
      'The request body uses an unsupported Content-Encoding.',
    ),
  'charset.unsupported': () =>
    new AppError(
      415,
      'unsupported-charset',
      'Unsupported charset',
      'The request body must be UTF-8 JSON.',
    ),
  'request.aborted': () =>
    new AppError(400, 'request-aborted', 'Request aborted', 'The client aborted the request body.'),
  'request.size.invalid': () =>
    new AppError(
      400,
      'bad-request',
      'Bad request',
      'The request body length does not match Content-Length.',
    ),
};

export const problemHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  if (res.headersSent) {
    // Too late to answer with a problem; make sure the socket does not hang.
    req.log.error({ err }, 'error after response started');
    res.destroy();
    return;
  }
  if (err instanceof AppError) {
    // The request's own log line (pino-http) carries the cause: one line per request, not two.
    if (err.status >= 500) res.err = (err.cause as Error | undefined) ?? err;
    for (const [name, value] of Object.entries(err.extra.headers ?? {})) res.setHeader(name, value);
    sendProblem(res, err.status, err.code, err.title, err.detail, err.extra.errors);
    return;
  }
  const httpErr = (typeof err === 'object' && err !== null ? err : {}) as HttpLikeError;
  const known = typeof httpErr.type === 'string' ? bodyParserProblems[httpErr.type] : undefined;
  if (known) {
    const problem = known();
    sendProblem(res, problem.status, problem.code, problem.title, problem.detail);
    return;
  }
  // Backstop: a PostgreSQL data exception (class 22: a value out of range, an invalid date) can
  // only come from a value the client sent that validation let through. It is their 400, not our 500.
  const sqlState = (err as { code?: unknown } | null)?.code;
  if (typeof sqlState === 'string' && sqlState.startsWith('22')) {
    req.log.warn({ code: sqlState }, 'database refused a value that passed validation');
    sendProblem(
      res,
      400,
      'invalid-value',
      'Invalid value',
      'A value in the request is out of range.',
    );
    return;
  }
  const status = Number(httpErr.status ?? httpErr.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    // e.g. the router's 400 for a path that is not valid percent-encoding.
    sendProblem(res, status, 'bad-request', 'Bad request', 'The request could not be understood.');
    return;
  }
  // Anything else is our bug: the request's log line gets it with its stack; the client, nothing.
  res.err = err as Error;
  sendProblem(res, 500, 'internal', 'Internal server error', 'An unexpected error occurred.');
};
