import type { Db } from '../db.ts';
import { notFound, preconditionFailed } from '../errors.ts';
import { createOnce, type Outcome } from '../idempotency/service.ts';
import * as repo from './repository.ts';
import type { NewTask, Task, TaskPatch } from './schemas.ts';

export type { Page, Position } from './repository.ts';

export type TasksService = ReturnType<typeof tasksService>;

const missing = () => notFound('There is no task with this id.');
const stale = () =>
  preconditionFailed(
    'The task has changed since you read it (If-Match does not match its ETag). Fetch it again.',
  );

/** A user's tasks. Another user's task is "not found", exactly like one that does not exist. */
export function tasksService(db: Db) {
  return {
    list: (
      userId: string,
      options: {
        limit: number;
        after?: repo.Position | undefined;
        completed?: boolean | undefined;
      },
    ): Promise<repo.Page> => repo.list(db, userId, options),

    /** With an idempotency key, a retry of the same request returns the first task again. */
    create(userId: string, input: NewTask, idempotencyKey?: string): Promise<Outcome<Task>> {
      // The same instant written another way is the same request.
      const request =
        typeof input.dueAt === 'string'
          ? { ...input, dueAt: new Date(input.dueAt).toISOString() }
          : input;
      return createOnce(
        db,
        idempotencyKey === undefined ? undefined : { userId, key: idempotencyKey, request },
        (tx) => repo.insert(tx, userId, input),
      );
    },

    async get(userId: string, id: string): Promise<Task> {
      return (await repo.find(db, userId, id)) ?? Promise.reject(missing());
    },

    /**
     * Applies `patch` atomically; with `expectedVersions` (If-Match), only while the task still has
     * one of them, so of racing writers exactly one wins.
     */
    async update(
      userId: string,
      id: string,
      patch: TaskPatch,
      expectedVersions: readonly number[] | undefined,
    ): Promise<Task> {
      const result = await repo.update(db, userId, id, patch, expectedVersions);
      if (result === undefined) throw missing();
      if (result === 'stale') throw stale();
      return result;
    },

    /** Deletes the task; with `expectedVersions` (If-Match), only while it still has one of them. */
    async remove(
      userId: string,
      id: string,
      expectedVersions: readonly number[] | undefined,
    ): Promise<void> {
      const result = await repo.remove(db, userId, id, expectedVersions);
      if (result === undefined) throw missing();
      if (result === 'stale') throw stale();
    },
  };
}
