import { z } from 'zod';
import { invalid } from '../errors.ts';
import { instant, uuid } from '../validation.ts';
import type { TaskSort } from './schemas.ts';

/**
 * The opaque strings clients hand back: list cursors and sync tokens. Both are base64url JSON:
 * they carry nothing secret and grant nothing (every query is filtered by the caller), so they
 * are validated rather than signed. A client that edits one can only confuse its own paging.
 */

/** Where a list page ends, in the order of its sort (see repository.ts). */
export interface ListPosition {
  readonly sort: TaskSort;
  /** The sort key of the last item: an instant, or null (a task without a due date). */
  readonly value: string | null;
  readonly id: string;
}

/** Where a sync stands: after change `seq` (and, among rows sharing it, after `id`). */
export interface SyncPosition {
  readonly seq: number;
  /** Only rows written before the change counter existed share a seq (0): then the id orders. */
  readonly id?: string | undefined;
}

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function decode<T>(text: string, schema: z.ZodType<T>): T | undefined {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const result = schema.safeParse(decoded);
  return result.success ? result.data : undefined;
}

// `s` was added with the other sorts; a cursor without it (release 0.1.0) is a createdAt cursor.
const listCursorSchema = z.union([
  z.strictObject({ s: z.enum(['createdAt', 'updatedAt']), t: instant(), i: uuid() }),
  z.strictObject({ s: z.literal('dueAt'), t: instant().nullable(), i: uuid() }),
  z.strictObject({ t: instant(), i: uuid() }),
]);

export const encodeListCursor = (position: ListPosition): string =>
  encode({ s: position.sort, t: position.value, i: position.id });

/** The position a list cursor names; a 400 when it is not one of ours or is for another sort. */
export function decodeListCursor(cursor: string, sort: TaskSort): ListPosition {
  const decoded = decode(cursor, listCursorSchema);
  if (!decoded) {
    throw invalid('The cursor is not one this API returned.', [
      { name: 'cursor', in: 'query', reason: 'is not a valid cursor' },
    ]);
  }
  const cursorSort = 's' in decoded ? decoded.s : 'createdAt';
  if (cursorSort !== sort) {
    throw invalid(`The cursor belongs to sort=${cursorSort}, not sort=${sort}.`, [
      { name: 'cursor', in: 'query', reason: `was returned for sort=${cursorSort}` },
    ]);
  }
  return { sort, value: decoded.t, id: decoded.i };
}

// v: the format, so a later release can change it and still read these. u: the user it was
// issued to (a token is a position in one user's change order, meaningless for another).
const syncTokenSchema = z.strictObject({
  v: z.literal(1),
  u: uuid(),
  s: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  i: uuid().optional(),
});

export const encodeSyncToken = (userId: string, position: SyncPosition): string =>
  encode({ v: 1, u: userId, s: position.seq, ...(position.id && { i: position.id }) });

export interface SyncToken {
  /** The user it was issued to: the caller must be that user (see tasks/service.ts). */
  readonly owner: string;
  readonly position: SyncPosition;
}

export const foreignSyncToken = () =>
  invalid('The sync token is not one this API returned to you. Omit `since` to resync.', [
    { name: 'since', in: 'query', reason: 'is not a valid sync token' },
  ]);

/** The position a sync token names, and whose it is; a 400 when it is garbled or forged. */
export function decodeSyncToken(token: string): SyncToken {
  const decoded = decode(token, syncTokenSchema);
  if (!decoded) throw foreignSyncToken();
  return { owner: decoded.u, position: { seq: decoded.s, id: decoded.i } };
}
