import { z } from 'zod';
import { routesFor } from '../http/routes.ts';
import { idempotencyKeySchema } from '../idempotency/schemas.ts';
import { decodeListCursor, decodeSyncToken, encodeListCursor, encodeSyncToken } from './cursors.ts';
import {
  changesQuerySchema,
  createTaskSchema,
  listQuerySchema,
  taskChangesSchema,
  taskIdSchema,
  taskListSchema,
  taskSchema,
  updateTaskSchema,
  type Task,
} from './schemas.ts';
import type { TasksService } from './service.ts';

export interface TasksDeps {
  readonly tasks: TasksService;
}

const etagOf = (task: Task): string => `"${task.version}"`;
const locationOf = (task: Task): string => `/api/v1/tasks/${task.id}`;

/** Entity tags in an If-Match / If-None-Match header; `*` matches any. */
const entityTags = (header: string): string[] =>
  header
    .split(',')
    .map((tag) => tag.trim())
    .filter(Boolean);

/**
 * The versions an If-Match header accepts: undefined when there is no header or it is `*`
 * (matched by any existing task); an empty list (matches nothing) when it names no version we
 * could have. Strong comparison (RFC 9110 §13.1.1): weak tags never match.
 */
function expectedVersions(header: string | undefined): number[] | undefined {
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
const idParams = z.object({ id: taskIdSchema });
const ifMatchHeader = (description: string) => ({ description, schema: z.string() });
const etagHeader = { ETag: { description: 'The task version as a strong entity tag, e.g. "3"' } };

const route = routesFor<TasksDeps>();

export const tasksRoutes = [
  route({
    method: 'get',
    path: '/api/v1/tasks',
    operationId: 'listTasks',
    summary: 'List tasks one page at a time (keyset pagination), newest first by default',
    description:
      'A cursor belongs to the sort it was returned for. dueAfter is inclusive and dueBefore ' +
      'exclusive, so adjacent windows neither overlap nor leave gaps; with either, tasks without ' +
      'a due date are left out.',
    tags: ['tasks'],
    auth: true,
    query: listQuerySchema,
    responses: { 200: { description: 'A page of tasks', body: taskListSchema } },
    handler: async ({ caller, query }, { tasks }) => {
      const page = await tasks.list(caller, {
        limit: query.limit,
        sort: query.sort,
        after: query.cursor === undefined ? undefined : decodeListCursor(query.cursor, query.sort),
        completed: query.completed === undefined ? undefined : query.completed === 'true',
        dueAfter: query.dueAfter,
        dueBefore: query.dueBefore,
      });
      return {
        status: 200,
        body: { items: page.items, nextCursor: page.last ? encodeListCursor(page.last) : null },
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/tasks',
    operationId: 'createTask',
    summary: 'Create a task',
    tags: ['tasks'],
    auth: true,
    headers: {
      'Idempotency-Key': {
        description: idempotencyKeySchema.description!,
        schema: idempotencyKeySchema,
      },
    },
    body: createTaskSchema,
    responses: {
      201: {
        description:
          'Task created; or, with a reused Idempotency-Key, the first response replayed; or, ' +
          'with a client-chosen id created before by the same body, the task as it is now',
        body: taskSchema,
        headers: {
          Location: { description: 'The new task' },
          ...etagHeader,
          'Idempotent-Replayed': { description: '`true` when this is a replayed response' },
        },
      },
    },
    problems: ['idempotency-key-reused', 'conflict', 'task-deleted'],
    handler: async ({ caller, body, headers }, { tasks }) => {
      const { value: task, replayed } = await tasks.create(
        caller,
        body,
        headers['Idempotency-Key'],
      );
      return {
        status: 201,
        headers: {
          Location: locationOf(task),
          ETag: etagOf(task),
          ...(replayed && { 'Idempotent-Replayed': 'true' }),
        },
        body: task,
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/tasks/changes',
    operationId: 'syncTasks',
    summary: 'Delta sync: what changed since your last sync',
    description:
      'Without `since`, every task (a full sync). Then pass the `next` of each answer as `since`: ' +
      'while `hasMore` is true, call again at once; otherwise keep `next` for the next sync. ' +
      'Apply `changes` (replace by id) and `deleted` (remove by id) in the order of the pages. ' +
      'No change is ever skipped, whatever commits concurrently. 410 means the token is too old ' +
      '(deletions since have been forgotten): discard local state and sync without `since`.',
    tags: ['tasks'],
    auth: true,
    query: changesQuerySchema,
    responses: { 200: { description: 'Changes in commit order', body: taskChangesSchema } },
    problems: ['sync-token-expired'],
    handler: async ({ caller, query }, { tasks }) => {
      const since = query.since === undefined ? undefined : decodeSyncToken(query.since);
      const { userId, ...page } = await tasks.changes(caller, since, query.limit);
      return {
        status: 200,
        body: { ...page, next: encodeSyncToken(userId, page.next) },
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/tasks/{id}',
    operationId: 'getTask',
    summary: 'Read a task',
    tags: ['tasks'],
    auth: true,
    // A client may keep it and revalidate with If-None-Match.
    cache: 'private, no-cache',
    params: idParams,
    headers: {
      'If-None-Match': {
        description: 'Answer 304 if the task still has this ETag',
        schema: z.string(),
      },
    },
    responses: {
      200: { description: 'The task', body: taskSchema, headers: etagHeader },
      304: { description: 'Not modified (If-None-Match matched)', headers: etagHeader },
    },
    problems: ['not-found'],
    handler: async ({ caller, params, headers }, { tasks }) => {
      const task = await tasks.get(caller, params.id);
      const cache = { ETag: etagOf(task) };
      const ifNoneMatch = headers['If-None-Match'];
      // Weak comparison for If-None-Match (RFC 9110 §13.1.2).
      if (
        ifNoneMatch &&
        entityTags(ifNoneMatch).some(
          (tag) => tag === '*' || tag.replace(/^W\//, '') === etagOf(task),
        )
      ) {
        return { status: 304, headers: cache };
      }
      return { status: 200, headers: cache, body: task };
    },
  }),
  route({
    method: 'patch',
    path: '/api/v1/tasks/{id}',
    operationId: 'updateTask',
    summary: 'Change some fields of a task',
    description:
      'Without If-Match, the fields sent are applied in one atomic update (no lost update of other fields).',
    tags: ['tasks'],
    auth: true,
    params: idParams,
    headers: {
      'If-Match': ifMatchHeader('Apply only if the task still has this ETag'),
    },
    body: updateTaskSchema,
    responses: { 200: { description: 'The changed task', body: taskSchema, headers: etagHeader } },
    problems: ['not-found', 'precondition-failed'],
    handler: async ({ caller, params, headers, body }, { tasks }) => {
      const task = await tasks.update(
        caller,
        params.id,
        body,
        expectedVersions(headers['If-Match']),
      );
      return { status: 200, headers: { ETag: etagOf(task) }, body: task };
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/tasks/{id}',
    operationId: 'deleteTask',
    summary: 'Delete a task',
    tags: ['tasks'],
    auth: true,
    params: idParams,
    headers: { 'If-Match': ifMatchHeader('Delete only if the task still has this ETag') },
    responses: { 204: { description: 'Deleted' } },
    problems: ['not-found', 'precondition-failed'],
    handler: async ({ caller, params, headers }, { tasks }) => {
      await tasks.remove(caller, params.id, expectedVersions(headers['If-Match']));
      return { status: 204 };
    },
  }),
];
