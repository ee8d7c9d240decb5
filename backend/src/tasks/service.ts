import type { Caller } from '../auth/caller.ts';
import type { Db } from '../db.ts';
import { AppError, notFound, preconditionFailed } from '../errors.ts';
import { createOnce, fingerprint, type Outcome } from '../idempotency/service.ts';
import { foreignSyncToken, type SyncPosition, type SyncToken } from './cursors.ts';
import * as repo from './repository.ts';
import type { NewTask, Task, TaskPatch } from './schemas.ts';

export type { ListOptions, Page } from './repository.ts';

export type TasksService = ReturnType<typeof tasksService>;

const missing = () => notFound('There is no task with this id.');
const stale = () =>
  preconditionFailed(
    'The task has changed since you read it (If-Match does not match its ETag). Fetch it again.',
  );
const expired = (why: string) =>
  new AppError('sync-token-expired', `${why} Sync again from scratch: omit \`since\`.`);

/**
 * Idempotency records stored by release 0.1.0 (replayed for 24 hours after the upgrade) hold
 * tasks without completedAt. Drop this once no record can be that old.
 */
function withCompletedAt(stored: Task): Task {
  const task = stored as Omit<Task, 'completedAt'> & { completedAt?: string | null };
  return { ...task, completedAt: task.completedAt ?? (task.completed ? task.updatedAt : null) };
}

export interface Changes {
  readonly changes: Task[];
  readonly deleted: { id: string; deletedAt: string }[];
  /** Where the next sync starts. */
  readonly next: SyncPosition;
  readonly hasMore: boolean;
}

/** A user's tasks. Another user's task is "not found", exactly like one that does not exist. */
export function tasksService(db: Db) {
  return {
    list: (caller: Caller, options: repo.ListOptions): Promise<repo.Page> =>
      repo.list(db, caller, options),

    /**
     * With an idempotency key, a retry of the same request returns the first task again. With a
     * client-chosen id, a retry of the same request returns the task as it is now.
     */
    async create(caller: Caller, input: NewTask, idempotencyKey?: string): Promise<Outcome<Task>> {
      // The same instant written another way, or the same id in upper case, is the same request.
      const request = {
        ...input,
        ...(typeof input.dueAt === 'string' && { dueAt: new Date(input.dueAt).toISOString() }),
        ...(input.id !== undefined && { id: input.id.toLowerCase() }),
      };
      let replayedById = false;
      const outcome = await createOnce(
        db,
        idempotencyKey === undefined ? undefined : { caller, key: idempotencyKey, request },
        async (tx) => {
          const inserted = await repo.insert(
            tx,
            caller,
            input,
            input.id === undefined ? undefined : fingerprint(request),
          );
          replayedById = inserted.replayed;
          return inserted.task;
        },
      );
      return outcome.replayed
        ? { value: withCompletedAt(outcome.value), replayed: true }
        : { value: outcome.value, replayed: replayedById };
    },

    async get(caller: Caller, id: string): Promise<Task> {
      return (await repo.find(db, caller, id)) ?? Promise.reject(missing());
    },

    /**
     * Applies `patch` atomically; with `expectedVersions` (If-Match), only while the task still has
     * one of them, so of racing writers exactly one wins.
     */
    async update(
      caller: Caller,
      id: string,
      patch: TaskPatch,
      expectedVersions: readonly number[] | undefined,
    ): Promise<Task> {
      const result = await repo.update(db, caller, id, patch, expectedVersions);
      if (result === undefined) throw missing();
      if (result === 'stale') throw stale();
      return result;
    },

    /** Deletes the task; with `expectedVersions` (If-Match), only while it still has one of them. */
    async remove(
      caller: Caller,
      id: string,
      expectedVersions: readonly number[] | undefined,
    ): Promise<void> {
      const result = await repo.remove(db, caller, id, expectedVersions);
      if (result === undefined) throw missing();
      if (result === 'stale') throw stale();
    },

    /**
     * Delta sync: what changed after `since`, in the order it was committed, at most `limit`
     * entries. Without `since`, every live task (a full sync: no tombstones).
     */
    async changes(
      caller: Caller,
      token: SyncToken | undefined,
      limit: number,
    ): Promise<Changes & { userId: string }> {
      const since = token?.position;
      const log = await repo.changes(db, caller, {
        after: since ?? { seq: -1 },
        withTombstones: since !== undefined,
        limit,
      });
      // A position in another user's change order means nothing here (the statement only read
      // the caller's own rows with it).
      if (token && token.owner !== log.userId) throw foreignSyncToken();
      if (since && since.seq > log.head) {
        throw expired(
          'The sync token is newer than the data on the server (restored from a backup?).',
        );
      }
      if (since && since.seq < log.purged) {
        throw expired('Tasks deleted since this sync token are no longer remembered.');
      }
      const page = log.entries.slice(0, limit);
      const hasMore = log.entries.length > limit;
      const last = page.at(-1);
      return {
        changes: page.flatMap((e) => (e.kind === 'changed' ? [e.task] : [])),
        deleted: page.flatMap((e) =>
          e.kind === 'deleted' ? [{ id: e.id, deletedAt: e.deletedAt }] : [],
        ),
        next:
          hasMore && last
            ? { seq: last.seq, id: last.kind === 'changed' ? last.task.id : last.id }
            : { seq: log.head },
        hasMore,
        userId: log.userId,
      };
    },
  };
}
