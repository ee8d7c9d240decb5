import { z } from 'zod';

export const credentialsSchema = z
  .strictObject({
    email: z.email().max(254).describe('Compared case-insensitively; stored in lower case'),
    password: z.string().min(10).max(200),
  })
  .meta({ id: 'Credentials' });

export const userSchema = z
  .object({ id: z.uuid(), email: z.email(), createdAt: z.iso.datetime() })
  .meta({ id: 'User' });

export const sessionSchema = z
  .object({
    token: z.string().describe('Opaque bearer token; send as `Authorization: Bearer <token>`'),
    expiresAt: z.iso.datetime(),
  })
  .meta({ id: 'Session' });

export const registrationSchema = z
  .object({ user: userSchema, token: sessionSchema.shape.token, expiresAt: z.iso.datetime() })
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
  id: z.uuid(),
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
