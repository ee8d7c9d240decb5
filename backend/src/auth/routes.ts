import { z } from 'zod';
import { rateLimitHeaderSpecs } from '../http/openapi.ts';
import { rateLimitHeaders } from '../http/problems.ts';
import { routesFor, type Authenticate } from '../http/routes.ts';
import {
  accountDeletionSchema,
  credentialsSchema,
  loginSchema,
  passwordChangeSchema,
  registrationSchema,
  sessionListSchema,
  sessionSchema,
  userSchema,
} from './schemas.ts';
import type { AuthService } from './service.ts';
import { bearerToken } from './tokens.ts';
import { uuid } from '../validation.ts';

export interface AuthDeps {
  readonly auth: AuthService;
}

/** Finds the caller of a route with `auth: true` from its `Authorization: Bearer` header. */
export function bearerAuthenticator(auth: AuthService): Authenticate {
  return (req) => auth.caller(bearerToken(req.get('authorization')));
}

const route = routesFor<AuthDeps>();
// An email (254), a password (200 characters, 6 bytes each at worst when escaped) and a token.
const credentialsLimit = 4 * 1024;
const sessionParams = z.object({ id: uuid() });

export const authRoutes = [
  route({
    method: 'post',
    path: '/api/v1/auth/register',
    operationId: 'register',
    summary: 'Create an account and a session',
    tags: ['auth'],
    body: credentialsSchema,
    bodyLimit: credentialsLimit,
    responses: {
      201: {
        description: 'Account created',
        body: registrationSchema,
        headers: rateLimitHeaderSpecs,
      },
    },
    problems: ['conflict', 'rate-limited'],
    handler: async ({ body, ip }, { auth }) => {
      const { rateLimit, ...registration } = await auth.register(body, { ip });
      return { status: 201, headers: rateLimitHeaders(rateLimit), body: registration };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/auth/login',
    operationId: 'login',
    summary: 'Start a session',
    description: 'A wrong email and a wrong password get the same 401.',
    tags: ['auth'],
    body: loginSchema,
    bodyLimit: credentialsLimit,
    responses: {
      200: {
        description: 'Session started',
        body: sessionSchema,
        headers: rateLimitHeaderSpecs,
      },
    },
    problems: ['unauthorized', 'rate-limited'],
    handler: async ({ body, ip }, { auth }) => {
      const { rateLimit, ...session } = await auth.login(body, { ip });
      return { status: 200, headers: rateLimitHeaders(rateLimit), body: session };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/auth/logout',
    operationId: 'logout',
    summary: 'End this session; the token stops working at once',
    tags: ['auth'],
    auth: true,
    responses: { 204: { description: 'Session ended' } },
    handler: async ({ caller }, { auth }) => {
      await auth.logout(caller);
      return { status: 204 };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/me',
    operationId: 'getMe',
    summary: 'The current user',
    tags: ['auth'],
    auth: true,
    responses: { 200: { description: 'The user', body: userSchema } },
    handler: async ({ caller }, { auth }) => ({ status: 200, body: await auth.me(caller) }),
  }),
  route({
    method: 'post',
    path: '/api/v1/auth/logout-all',
    operationId: 'logoutAll',
    summary: 'End every session of this account, this one included',
    tags: ['auth'],
    auth: true,
    responses: { 204: { description: 'Every session ended' } },
    handler: async ({ caller }, { auth }) => {
      await auth.logoutAll(caller);
      return { status: 204 };
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/me',
    operationId: 'deleteAccount',
    summary: 'Delete the account and everything of it',
    description:
      'Tasks, deleted-task records, sessions, known devices and idempotency records go in one ' +
      'transaction; every token of the account stops working at once. Password checks are ' +
      'throttled per session and per account.',
    tags: ['auth'],
    auth: true,
    body: accountDeletionSchema,
    bodyLimit: credentialsLimit,
    responses: { 204: { description: 'Account deleted', headers: rateLimitHeaderSpecs } },
    problems: ['wrong-password', 'rate-limited'],
    handler: async ({ caller, body }, { auth }) => {
      const { rateLimit } = await auth.deleteAccount(caller, body.currentPassword);
      return { status: 204, headers: rateLimitHeaders(rateLimit) };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/me/password',
    operationId: 'changePassword',
    summary: 'Change the password; every other session ends',
    description:
      'The session that asks stays. Password checks are throttled per session and per account.',
    tags: ['auth'],
    auth: true,
    body: passwordChangeSchema,
    bodyLimit: credentialsLimit,
    responses: { 204: { description: 'Password changed', headers: rateLimitHeaderSpecs } },
    problems: ['wrong-password', 'rate-limited'],
    handler: async ({ caller, body }, { auth }) => {
      const { rateLimit } = await auth.changePassword(caller, body);
      return { status: 204, headers: rateLimitHeaders(rateLimit) };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/me/sessions',
    operationId: 'listSessions',
    summary: "The account's live sessions (signed-in devices)",
    tags: ['auth'],
    auth: true,
    responses: { 200: { description: 'The sessions', body: sessionListSchema } },
    handler: async ({ caller }, { auth }) => ({
      status: 200,
      body: { items: await auth.listSessions(caller) },
    }),
  }),
  route({
    method: 'delete',
    path: '/api/v1/me/sessions/{id}',
    operationId: 'revokeSession',
    summary: 'End one session (sign a device out)',
    description: "Another account's session is not found, exactly like one that does not exist.",
    tags: ['auth'],
    auth: true,
    params: sessionParams,
    responses: { 204: { description: 'Session ended' } },
    problems: ['not-found'],
    handler: async ({ caller, params }, { auth }) => {
      await auth.revokeSession(caller, params.id);
      return { status: 204 };
    },
  }),
];
