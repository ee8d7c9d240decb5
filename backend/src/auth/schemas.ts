import { z } from 'zod';

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
  .object({ id: z.uuid(), email: z.email(), createdAt: z.iso.datetime() })
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

export type User = z.infer<typeof userSchema>;
export type Credentials = z.infer<typeof credentialsSchema>;
export type Login = z.infer<typeof loginSchema>;
