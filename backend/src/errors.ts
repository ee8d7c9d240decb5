import type { RateLimitState } from './rate-limit/service.ts';

/**
 * Errors say what went wrong in the application's own words: a stable code and a detail for the
 * client. They know nothing of HTTP; `http/problems.ts` is the one place that turns each code into
 * a status and an RFC 9457 problem.
 */

export interface FieldProblem {
  /** Where the problem is: a body field (`title`), a query parameter or a header name. */
  readonly name: string;
  readonly in: 'body' | 'query' | 'path' | 'header';
  readonly reason: string;
}

/** Every reason the application refuses a request. http/problems.ts gives each a status and title. */
export type ErrorCode =
  // the request
  | 'validation-error'
  | 'malformed-json'
  | 'invalid-value'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'unsupported-encoding'
  | 'unsupported-charset'
  | 'request-aborted'
  | 'bad-request'
  | 'route-not-found'
  // who is asking, and how often
  | 'unauthorized'
  | 'wrong-password'
  | 'rate-limited'
  // the resource
  | 'not-found'
  | 'conflict'
  | 'precondition-failed'
  | 'idempotency-key-reused'
  | 'task-deleted'
  | 'sync-token-expired'
  // the database
  | 'database-unavailable'
  | 'database-timeout'
  // our bug
  | 'internal';

export interface ErrorDetails {
  /** One entry per field problem (validation errors). */
  readonly errors?: readonly FieldProblem[];
  /** When a retry may succeed (rate limits, a database that is away). */
  readonly retryAfterSeconds?: number;
  /** Where the client stands against the limit that refused it (or that it is counted under). */
  readonly rateLimit?: RateLimitState;
}

export class AppError extends Error {
  override name = 'AppError';

  constructor(
    readonly code: ErrorCode,
    /** Shown to the client as the problem's `detail`: say what to do, never leak internals. */
    readonly detail: string,
    readonly details: ErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(detail, options);
  }
}

export const invalid = (detail: string, errors?: readonly FieldProblem[]) =>
  new AppError('validation-error', detail, errors ? { errors } : {});
export const unauthorized = (detail: string) => new AppError('unauthorized', detail);
export const notFound = (detail: string) => new AppError('not-found', detail);
export const conflict = (detail: string) => new AppError('conflict', detail);
export const preconditionFailed = (detail: string) => new AppError('precondition-failed', detail);
export const payloadTooLarge = (limitBytes: number) =>
  new AppError(
    'payload-too-large',
    `The request body exceeds this operation's limit of ${limitBytes} bytes.`,
  );

/** Thrown by the db module when PostgreSQL cannot be reached or does not answer in time. */
export class DatabaseUnavailableError extends AppError {
  override name = 'DatabaseUnavailableError';

  constructor(
    readonly reason: 'unreachable' | 'timeout' | 'migrating',
    options?: ErrorOptions,
  ) {
    super(
      reason === 'timeout' ? 'database-timeout' : 'database-unavailable',
      {
        timeout: 'The database did not answer in time. Retry later.',
        unreachable: 'The database is not reachable. Retry later.',
        migrating: 'The database schema is being brought up to date. Retry shortly.',
      }[reason],
      { retryAfterSeconds: 1 },
      options,
    );
  }
}
