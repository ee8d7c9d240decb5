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

export type User = z.infer<typeof userSchema>;
export type Credentials = z.infer<typeof credentialsSchema>;
