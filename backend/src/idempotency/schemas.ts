import { z } from 'zod';

/** The `Idempotency-Key` request header (IETF draft "The Idempotency-Key HTTP Header Field"). */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
  .describe('Retry-safe creation: the same key and body within 24 h replays the first response');
