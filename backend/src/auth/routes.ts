import { rateLimitHeaderSpecs } from '../http/openapi.ts';
import { rateLimitHeaders } from '../http/problems.ts';
import { routesFor, type Authenticate } from '../http/routes.ts';
import {
  credentialsSchema,
  loginSchema,
  registrationSchema,
  sessionSchema,
  userSchema,
} from './schemas.ts';
import type { AuthService } from './service.ts';
import { bearerToken } from './tokens.ts';

export interface AuthDeps {
  readonly auth: AuthService;
}

/** Finds the caller of a route with `auth: true` from its `Authorization: Bearer` header. */
export function bearerAuthenticator(auth: AuthService): Authenticate {
  return (req) => auth.authenticate(bearerToken(req.get('authorization')));
}

const route = routesFor<AuthDeps>();
// An email (254), a password (200 characters, 6 bytes each at worst when escaped) and a token.
const credentialsLimit = 4 * 1024;

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
      await auth.logout(caller.tokenHash);
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
    handler: ({ caller }) => ({ status: 200, body: caller.user }),
  }),
];
