import { createHash } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { currentUser, requireAuth } from '../auth/routes.ts';
import type { Db } from '../db.ts';
import { AppError, badRequest, notFound, preconditionFailed } from '../errors.ts';
import { instant, parse } from '../validation.ts';
import * as repo from './repository.ts';
import {
  createTaskSchema,
  listQuerySchema,
  taskIdSchema,
  updateTaskSchema,
  type NewTask,
  type Task,
} from './schemas.ts';

const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;
const cursorSchema = z.strictObject({ t: instant(), i: z.uuid() });

const etagOf = (task: Task): string => `"${task.version}"`;
const locationOf = (task: Task): string => `/api/v1/tasks/${task.id}`;

function encodeCursor(position: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify({ t: position.createdAt, i: position.id })).toString(
    'base64url',
  );
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  const result = cursorSchema.safeParse(decoded);
  if (!result.success) {
    throw badRequest('The cursor is not one this API returned.', [
      { name: 'cursor', in: 'query', reason: 'is not a valid cursor' },
    ]);
  }
  return { createdAt: result.data.t, id: result.data.i };
}

/** Entity tags in an If-Match / If-None-Match header; `*` matches any. */
function entityTags(header: string): string[] {
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter(Boolean);
}

/**
 * The versions an If-Match header accepts: undefined when there is no header or it is `*`
 * (matched by any existing task); an empty list (matches nothing) when it names no version we
 * could have. Strong comparison (RFC 9110 §13.1.1): weak tags never match.
 */
function expectedVersions(req: Request): number[] | undefined {
  const header = req.get('if-match');
  if (header === undefined) return undefined;
  const tags = entityTags(header);
  if (tags.includes('*')) return undefined;
  return tags.flatMap((tag) => {
    const match = /^"([1-9]\d{0,9})"$/.exec(tag);
    return match && Number(match[1]) <= 2_147_483_647 ? [Number(match[1])] : [];
  });
}

// Built once: zod 4 compiles an object schema on its first parse, so a schema built per request
// cost about as much CPU as the rest of the route (measured with `npm run bench -- --profile`).
const idParamsSchema = z.object({ id: taskIdSchema });

function parseId(req: Request): string {
  return parse(idParamsSchema, req.params, 'path').id;
}

/**
 * A stable hash of the validated body: the same request in another key order, or with the same
 * instant written another way (`…00Z`, `…00.000+00:00`), is the same request.
 */
function requestHash(body: NewTask): Buffer {
  const normalised =
    typeof body.dueAt === 'string' ? { ...body, dueAt: new Date(body.dueAt).toISOString() } : body;
  const canonical = JSON.stringify(normalised, Object.keys(normalised).sort());
  return createHash('sha256').update(canonical).digest();
}

export function tasksRouter(db: Db): Router {
  const router = Router();
  // Per route rather than router.use(): a request refused with 401 is still measured under its
  // route template, not as an unmatched path.
  const auth = requireAuth(db);

  router.get('/api/v1/tasks', auth, async (req, res) => {
    const query = parse(listQuerySchema, req.query, 'query');
    const page = await repo.list(db, currentUser(req).id, {
      limit: query.limit,
      ...(query.cursor === undefined ? {} : { after: decodeCursor(query.cursor) }),
      ...(query.completed === undefined ? {} : { completed: query.completed === 'true' }),
    });
    res.json({ items: page.items, nextCursor: page.last ? encodeCursor(page.last) : null });
  });

  router.post('/api/v1/tasks', auth, async (req, res) => {
    const input = parse(createTaskSchema, req.body, 'body');
    const userId = currentUser(req).id;
    const key = req.get('idempotency-key');
    if (key === undefined) {
      const task = await repo.insert(db, userId, input);
      res.status(201).location(locationOf(task)).setHeader('ETag', etagOf(task)).json(task);
      return;
    }
    if (!idempotencyKeyPattern.test(key)) {
      throw badRequest('The Idempotency-Key header must be 1-255 visible ASCII characters.', [
        { name: 'Idempotency-Key', in: 'header', reason: 'must be 1-255 visible ASCII characters' },
      ]);
    }
    const outcome = await db.withTransaction(async (tx) => {
      const claim = await repo.claimIdempotencyKey(tx, userId, key, requestHash(input));
      if (claim.kind !== 'claimed') return claim;
      const task = await repo.insert(tx, userId, input);
      await repo.storeIdempotentResponse(tx, userId, key, {
        status: 201,
        location: locationOf(task),
        body: task,
      });
      return { kind: 'created' as const, task };
    });
    if (outcome.kind === 'mismatch') {
      throw new AppError(
        422,
        'idempotency-key-reused',
        'Idempotency key reused',
        'This Idempotency-Key was already used with a different request body.',
      );
    }
    if (outcome.kind === 'replay') {
      const { status, location, body } = outcome.response;
      if (location) res.location(location);
      res.setHeader('Idempotent-Replayed', 'true');
      res.setHeader('ETag', etagOf(body as Task));
      res.status(status).json(body);
      return;
    }
    res
      .status(201)
      .location(locationOf(outcome.task))
      .setHeader('ETag', etagOf(outcome.task))
      .json(outcome.task);
  });

  router.get('/api/v1/tasks/:id', auth, async (req, res) => {
    const id = parseId(req);
    const task = await repo.find(db, currentUser(req).id, id);
    if (!task) throw notFound('There is no task with this id.');
    res.setHeader('ETag', etagOf(task));
    res.setHeader('Cache-Control', 'private, no-cache');
    const ifNoneMatch = req.get('if-none-match');
    // Weak comparison for If-None-Match (RFC 9110 §13.1.2).
    if (
      ifNoneMatch &&
      entityTags(ifNoneMatch).some((tag) => tag === '*' || tag.replace(/^W\//, '') === etagOf(task))
    ) {
      res.status(304).end();
      return;
    }
    res.json(task);
  });

  router.patch('/api/v1/tasks/:id', auth, async (req, res) => {
    const id = parseId(req);
    const patch = parse(updateTaskSchema, req.body, 'body');
    const result = await repo.update(db, currentUser(req).id, id, patch, expectedVersions(req));
    if (result === undefined) throw notFound('There is no task with this id.');
    if (result === 'stale') {
      throw preconditionFailed(
        'The task has changed since you read it (If-Match does not match its ETag). Fetch it again.',
      );
    }
    res.setHeader('ETag', etagOf(result));
    res.json(result);
  });

  router.delete('/api/v1/tasks/:id', auth, async (req, res) => {
    const id = parseId(req);
    const removed = await repo.remove(db, currentUser(req).id, id);
    if (!removed) throw notFound('There is no task with this id.');
    res.status(204).end();
  });

  return router;
}
