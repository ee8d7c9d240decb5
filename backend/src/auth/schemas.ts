import { z } from 'zod';
import { uuid } from '../validation.ts';

const email = z.email().max(254).describe('Compared case-insensitively; stored in lower case');
const password = z.string().min(10).max(200);
const token = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'is not a token this API issued');
const deviceToken = token.describe(
  'Identifies this client to this account (OWASP "device cookie"): store the one from the latest ' +
    'sign-in and send it with the next. A client that has signed in before is not locked out by ' +
    "other clients' failed attempts on the account.",
);

export const credentialsSchema = z.strictObject({ email, password }).meta({ id: 'Credentials' });

export const loginSchema = z
  .strictObject({ email, password, deviceToken: deviceToken.optional() })
  .meta({ id: 'Login' });

export const userSchema = z
  .object({ id: uuid(), email: z.email(), createdAt: z.iso.datetime() })
  .meta({ id: 'User' });

export const sessionSchema = z
  .object({
    token: z.string().describe('Opaque bearer token; send as `Authorization: Bearer <token>`'),
    expiresAt: z.iso.datetime(),
    deviceToken,
  })
  .meta({ id: 'Session' });

export const registrationSchema = z
  .object({
    user: userSchema,
    token: sessionSchema.shape.token,
    expiresAt: z.iso.datetime(),
    deviceToken,
  })
  .meta({ id: 'Registration' });

// Any length a stored password can have; bounded, because checking it costs an scrypt hash.
const currentPassword = z.string().min(1).max(200).describe('The password the account has now');
const newPassword = credentialsSchema.shape.password;

export const passwordChangeSchema = z
  .strictObject({ currentPassword, newPassword })
  .meta({ id: 'PasswordChange' });

export const accountDeletionSchema = z
  .strictObject({ currentPassword })
  .meta({ id: 'AccountDeletion' });

// Not a component of its own: only bodies are (see http/openapi.ts); it is inlined in SessionList.
export const sessionInfoSchema = z.object({
  id: uuid(),
  createdAt: z.iso.datetime(),
  lastUsedAt: z.iso.datetime().describe('Refreshed at most once an hour: accurate to the hour'),
  expiresAt: z.iso.datetime().describe('Moves later while the session is used (sliding)'),
  current: z.boolean().describe('The session of the token that asks'),
});

export const sessionListSchema = z
  .object({ items: z.array(sessionInfoSchema).describe('Most recently used first') })
  .meta({ id: 'SessionList' });

export type User = z.infer<typeof userSchema>;
export type SessionInfo = z.infer<typeof sessionInfoSchema>;
export type PasswordChange = z.infer<typeof passwordChangeSchema>;
export type Credentials = z.infer<typeof credentialsSchema>;
export type Login = z.infer<typeof loginSchema>;
