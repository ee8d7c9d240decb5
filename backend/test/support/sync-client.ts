import { expect } from 'vitest';
import type { Task } from '../../src/tasks/schemas.ts';
import type { Api } from './api.ts';

/**
 * A syncing client as a mobile app would write one: it keeps a replica of the user's tasks and
 * applies the pages of `GET /api/v1/tasks/changes` in order, following `next` while `hasMore`.
 */
export class SyncClient {
  readonly tasks = new Map<string, Task>();
  token: string | undefined;
  requests = 0;

  constructor(
    private readonly client: Api,
    private readonly auth: string,
    private readonly limit = 100,
  ) {}

  /** One request; applies its page and returns it. */
  async step(): Promise<{ changes: Task[]; deleted: { id: string }[]; hasMore: boolean }> {
    const query = new URLSearchParams({ limit: String(this.limit) });
    if (this.token !== undefined) query.set('since', this.token);
    const res = await this.client.get(`/api/v1/tasks/changes?${query.toString()}`, {
      token: this.auth,
    });
    expect(res.status, res.text).toBe(200);
    this.requests++;
    for (const task of res.body.changes as Task[]) this.tasks.set(task.id, task);
    for (const { id } of res.body.deleted as { id: string }[]) this.tasks.delete(id);
    this.token = res.body.next;
    return res.body;
  }

  /** Follows `next` until the server says there is nothing more. */
  async catchUp(): Promise<void> {
    while ((await this.step()).hasMore);
  }

  /** The replica as `GET /api/v1/tasks` orders it (newest first). */
  replica(): Task[] {
    return [...this.tasks.values()].sort(
      (a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id),
    );
  }
}

/** Every task of the user, through the list endpoint, following its cursors. */
export async function listAll(client: Api, token: string): Promise<Task[]> {
  const all: Task[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `?limit=100&cursor=${cursor}` : '?limit=100';
    const res = await client.get(`/api/v1/tasks${query}`, { token });
    expect(res.status).toBe(200);
    all.push(...(res.body.items as Task[]));
    cursor = res.body.nextCursor as string | null;
  } while (cursor);
  return all;
}
