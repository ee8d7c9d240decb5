import { isUtf8 } from 'node:buffer';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import type { Caller } from '../auth/caller.ts';
import { AppError, invalid, payloadTooLarge, type ErrorCode } from '../errors.ts';
import { parse } from '../validation.ts';

/**
 * One declaration per route: method, path, auth, request and response schemas, the problems it
 * may answer, and the handler. Express routing (`mountRoutes`) and the OpenAPI document
 * (`http/openapi.ts`) are both derived from these tables, so neither can drift from the other.
 * Handlers receive validated input and return a reply whose status and body type the table
 * declares: the compiler rejects an undeclared status or a body of the wrong shape.
 */

export type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';

/** `private, no-cache`: the client may keep it, but must revalidate (with If-None-Match). */
export type CachePolicy = 'no-store' | 'private, no-cache' | 'no-cache';

/**
 * Who is calling, for routes with `auth: true`: the bearer token of the request, which each of
 * the route's statements checks itself (auth/caller.ts). The authenticator only refuses a missing
 * or malformed token, without a round trip to the database.
 */
export type Authenticate = (req: Request) => Caller;

export interface HeaderSpec {
  readonly description: string;
  /** @default a string */
  readonly schema?: z.ZodType;
}

export interface ResponseSpec {
  readonly description: string;
  /** The JSON body; absent means no body. It must carry `.meta({ id })` (a named component). */
  readonly body?: z.ZodType;
  /** Response headers the client can rely on. */
  readonly headers?: Readonly<Record<string, HeaderSpec>>;
}

export type Responses = Readonly<Record<number, ResponseSpec>>;

type BodyOf<S> = S extends { body: infer B extends z.ZodType } ? z.input<B> : undefined;

/** What a handler returns: one of the declared statuses, with the body its schema describes. */
export type Reply<R extends Responses> = {
  [S in keyof R]: {
    status: S;
    headers?: Readonly<Record<string, string>>;
  } & (BodyOf<R[S]> extends undefined ? { body?: undefined } : { body: BodyOf<R[S]> });
}[keyof R];

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RequestContext<
  P extends z.ZodType | undefined,
  Q extends z.ZodType | undefined,
  B extends z.ZodType | undefined,
  H extends Readonly<Record<string, RequestHeaderSpec>> | undefined,
  A extends boolean,
> {
  readonly params: Out<P>;
  readonly query: Out<Q>;
  readonly body: Out<B>;
  readonly headers: H extends Readonly<Record<string, RequestHeaderSpec>>
    ? { readonly [K in keyof H]: Out<H[K]['schema']> | undefined }
    : Record<string, never>;
  readonly caller: A extends true ? Caller : undefined;
  /** The client's address (behind TRUST_PROXY's proxies, the address they report). */
  readonly ip: string;
  readonly log: Request['log'];
}

export interface RequestHeaderSpec {
  readonly description: string;
  readonly schema: z.ZodType<unknown, string>;
}

export interface RouteSpec<
  Deps,
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  H extends Readonly<Record<string, RequestHeaderSpec>> | undefined = undefined,
  A extends boolean = false,
  R extends Responses = Responses,
> {
  readonly method: Method;
  /** OpenAPI style, `{name}` for path parameters: `/api/v1/tasks/{id}`. */
  readonly path: `/${string}`;
  /** Unique, camelCase: generated clients name their methods after it. */
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  /** A bearer token is required; the handler gets `caller`. */
  readonly auth?: A;
  /** Whether the route can answer 503 because PostgreSQL is away. @default true */
  readonly database?: boolean;
  /**
   * Cache-Control of its answers. Most carry a user's data or tokens, which nothing between the
   * client and us may keep (RFC 6749 §5.1 for tokens), hence the default.
   * @default 'no-store'
   */
  readonly cache?: CachePolicy;
  readonly params?: P;
  readonly query?: Q;
  readonly headers?: H;
  /** The JSON request body; a route without one refuses any body. */
  readonly body?: B;
  /**
   * The largest body accepted, in bytes: enough for the largest valid body and no more, so that
   * a huge invalid one is refused before any work is done on it.
   * @default 65_536, which no route may exceed
   */
  readonly bodyLimit?: number;
  readonly responses: R;
  /** Problems this route raises itself, beyond those its declarations imply (see impliedProblems). */
  readonly problems?: readonly ErrorCode[];
  readonly handler: (
    ctx: RequestContext<P, Q, B, H, A>,
    deps: Deps,
  ) => Reply<R> | Promise<Reply<R>>;
}

/** A route with its types erased, as tables hold them. */
export type AnyRoute<Deps> = RouteSpec<
  Deps,
  z.ZodType | undefined,
  z.ZodType | undefined,
  z.ZodType | undefined,
  Readonly<Record<string, RequestHeaderSpec>> | undefined,
  boolean,
  Responses
>;

/**
 * Declares routes for handlers that take `Deps`; the returned function is the identity that lets
 * TypeScript infer and check each route's types (curried, because `Deps` is given, not inferred).
 */
export function routesFor<Deps>() {
  return function route<
    P extends z.ZodType | undefined = undefined,
    Q extends z.ZodType | undefined = undefined,
    B extends z.ZodType | undefined = undefined,
    H extends Readonly<Record<string, RequestHeaderSpec>> | undefined = undefined,
    A extends boolean = false,
    const R extends Responses = Responses,
  >(spec: RouteSpec<Deps, P, Q, B, H, A, R>): AnyRoute<Deps> {
    return spec as unknown as AnyRoute<Deps>;
  };
}

/** Every problem a route can answer: those it declares and those its declarations imply. */
export function routeProblems(spec: AnyRoute<never>): ErrorCode[] {
  const codes = new Set<ErrorCode>(spec.problems);
  // Any request may carry a body; a route without one refuses it.
  codes.add('validation-error');
  if (spec.body) {
    for (const code of [
      'malformed-json',
      'payload-too-large',
      'unsupported-media-type',
      'unsupported-encoding',
      'unsupported-charset',
      'request-aborted',
      'bad-request',
    ] as const) {
      codes.add(code);
    }
  }
  // The router answers 400 for a path parameter that is not valid percent-encoding.
  if (spec.params) codes.add('bad-request');
  if (spec.auth) codes.add('unauthorized');
  if (spec.database ?? true) {
    codes.add('database-unavailable');
    codes.add('database-timeout');
    // A value that passed validation yet PostgreSQL refused (a backstop: see db.ts).
    if (spec.body || spec.query || spec.params) codes.add('invalid-value');
  }
  return [...codes];
}

/** No operation accepts a larger body; the edge proxy refuses larger ones too (vps/Caddyfile). */
export const defaultBodyLimit = 64 * 1024;

/** A JSON parser for bodies up to `limit` bytes. */
const jsonParser = (limit: number) =>
  express.json({
    limit,
    // JSON text is UTF-8 (RFC 8259). Decoding invalid bytes to U+FFFD would store text the client
    // never sent; reject the body as malformed instead.
    verify: (_req, _res, buf) => {
      if (!isUtf8(buf)) {
        throw Object.assign(new Error('body is not valid UTF-8'), { type: 'entity.parse.failed' });
      }
    },
  });

const hasBody = (req: Request): boolean =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/**
 * Checks what the headers say of the body before anything reads it: a route that takes no body
 * refuses one, a body that is not JSON gets a clear 415, and one declared too large is refused
 * before it is read (body-parser would read and discard all of it first, holding the socket).
 */
function checkBody(req: Request, res: Response, limit: number | undefined): void {
  if (!hasBody(req)) return;
  if (limit === undefined) {
    throw new AppError('validation-error', 'This operation takes no request body.', {
      errors: [{ name: '(body)', in: 'body', reason: 'must be empty' }],
    });
  }
  if (!req.is('application/json')) {
    throw new AppError('unsupported-media-type', 'Send the body as application/json.');
  }
  if (Number(req.headers['content-length'] ?? 0) > limit) {
    res.setHeader('Connection', 'close');
    throw payloadTooLarge(limit);
  }
}

/** A route that declares no query parameters refuses any, as others refuse unknown ones. */
function noQuery(req: Request): undefined {
  const names = Object.keys(req.query);
  if (names.length > 0) {
    throw invalid(
      'This operation takes no query parameters.',
      names.slice(0, 20).map((name) => ({ name, in: 'query', reason: 'is not a known parameter' })),
    );
  }
  return undefined;
}

const callers = new WeakMap<Request, Caller>();

/**
 * What a handler gets. The client's address (proxy-addr, behind TRUST_PROXY) and the request's
 * logger are made only when a handler asks: prototype getters, since getters in an object literal
 * cost ~10 us a request here (measured against plain fields).
 */
class Context {
  constructor(
    private readonly req: Request,
    readonly params: unknown,
    readonly query: unknown,
    readonly body: unknown,
    readonly headers: Record<string, unknown>,
    readonly caller: Caller | undefined,
  ) {}

  get ip(): string {
    return this.req.ip ?? 'unknown';
  }

  get log(): Request['log'] {
    return this.req.log;
  }
}

/**
 * Writes a reply. The JSON is written directly rather than with res.json(), whose res.send()
 * parses and rebuilds the Content-Type, looks up a MIME type and checks freshness on every answer:
 * none of which applies here (conditional requests are the routes' own, ETag hashing is off).
 * Node leaves the body out of an answer to HEAD, keeping its Content-Length.
 */
function send(
  res: Response,
  reply: { status: number; headers?: Readonly<Record<string, string>>; body?: unknown },
) {
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  res.statusCode = reply.status;
  if (reply.body === undefined) {
    res.end();
    return;
  }
  const json = JSON.stringify(reply.body);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

const expressPath = (path: string): string => path.replace(/\{(\w+)\}/g, ':$1');

/** Mounts a table's routes on a new Router, each with exactly the steps it declares. */
export function mountRoutes<Deps>(
  table: readonly AnyRoute<Deps>[],
  deps: Deps,
  options: { authenticate: Authenticate },
): Router {
  // One URL per operation, exactly as documented: no trailing-slash or upper-case variants.
  const router = Router({ strict: true, caseSensitive: true });
  // OpenAPI matches a concrete path before a templated one (`/tasks/changes` before `/tasks/{id}`),
  // whatever the method: so concrete routes go first, and a method a concrete path does not
  // declare leaves this router (a 404 route-not-found) instead of reaching a templated route.
  const templated = (spec: AnyRoute<Deps>) => spec.path.includes('{');
  const patterns = table
    .filter(templated)
    .map((spec) => new RegExp(`^${spec.path.replace(/\{\w+\}/g, '[^/]+')}$`));
  const shadowing = new Set<string>(
    table
      .filter((spec) => !templated(spec) && patterns.some((pattern) => pattern.test(spec.path)))
      .map((spec) => spec.path),
  );
  const mount = (spec: AnyRoute<Deps>): void => {
    const bodyLimit = spec.body ? (spec.bodyLimit ?? defaultBodyLimit) : undefined;
    // The body's headers are checked, then the caller, before the body is read. Authentication
    // runs per route rather than router.use(): a request refused with 401 is still measured under
    // its route template, not as an unmatched path.
    const admit = (req: Request, res: Response) => {
      checkBody(req, res, bodyLimit);
      if (spec.auth) callers.set(req, options.authenticate(req));
    };
    const handle = async (req: Request, res: Response) => {
      res.setHeader('Cache-Control', spec.cache ?? 'no-store');
      const headers: Record<string, unknown> = {};
      for (const [name, header] of Object.entries(spec.headers ?? {})) {
        const value = req.get(name);
        headers[name] =
          value === undefined ? undefined : parse(header.schema, value, 'header', name);
      }
      const ctx = new Context(
        req,
        spec.params ? parse(spec.params, req.params, 'path') : undefined,
        spec.query ? parse(spec.query, req.query, 'query') : noQuery(req),
        spec.body ? parse(spec.body, req.body, 'body') : undefined,
        headers,
        callers.get(req),
      );
      send(res, await spec.handler(ctx, deps));
    };
    // As few steps as the route needs (each costs ~10 us for being one): a route without a body
    // is one step; one with a body reads it in between.
    const steps: RequestHandler[] =
      bodyLimit === undefined
        ? [
            (req, res) => {
              admit(req, res);
              return handle(req, res);
            },
          ]
        : [
            (req, res, next) => {
              admit(req, res);
              next();
            },
            jsonParser(bodyLimit),
            handle,
          ];
    router[spec.method](expressPath(spec.path), ...steps);
  };
  table.filter((spec) => !templated(spec)).forEach(mount);
  if (shadowing.size > 0) {
    router.use((req, _res, next) => next(shadowing.has(req.path) ? 'router' : undefined));
  }
  table.filter(templated).forEach(mount);
  return router;
}
