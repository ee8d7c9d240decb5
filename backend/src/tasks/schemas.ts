import { z } from 'zod';
import { instant, queryInteger, text, uuid, visibleText } from '../validation.ts';

const title = visibleText(1, 200);
const notes = text(0, 10_000);
const dueAt = instant().nullable().describe('RFC 3339 date-time, or null for no due date');

export const taskSchema = z
  .object({
    id: uuid(),
    title: z.string(),
    notes: z.string(),
    completed: z.boolean(),
    completedAt: z.iso
      .datetime()
      .nullable()
      .describe('When it was last completed; null while it is not. Set and cleared by the server'),
    dueAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    version: z.int().min(1).describe('Starts at 1 and grows by one on every change; the ETag'),
  })
  .meta({ id: 'Task' });

export const createTaskSchema = z
  .strictObject({
    id: uuid()
      .optional()
      .describe(
        'Chosen by the client (a task created offline). Returned in lower case. Creating it again ' +
          'with the same body replays (201, `Idempotent-Replayed: true`, the task as it is now); ' +
          'with another body, or once the task was deleted, 409',
      ),
    title,
    notes: notes.optional().describe('Defaults to an empty string'),
    completed: z.boolean().optional().describe('Defaults to false'),
    dueAt: dueAt.optional(),
  })
  .meta({ id: 'NewTask' });

export const updateTaskSchema = z
  .strictObject({
    title: title.optional(),
    notes: notes.optional(),
    completed: z.boolean().optional(),
    dueAt: dueAt.optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'must contain at least one field to change')
  .meta({ id: 'TaskPatch' });

export const taskIdSchema = uuid();

export const taskSorts = ['createdAt', 'updatedAt', 'dueAt'] as const;
export type TaskSort = (typeof taskSorts)[number];

export const listQuerySchema = z
  .strictObject({
    limit: queryInteger(1, 100).default(50),
    cursor: z.string().max(300).optional(),
    completed: z.enum(['true', 'false']).optional(),
    sort: z
      .enum(taskSorts)
      .default('createdAt')
      .describe(
        'createdAt and updatedAt: newest first; dueAt: soonest first, tasks without a due date last',
      ),
    dueAfter: instant().optional().describe('Only tasks due at or after this instant'),
    dueBefore: instant().optional().describe('Only tasks due before this instant'),
  })
  .refine((q) => !q.dueAfter || !q.dueBefore || Date.parse(q.dueAfter) < Date.parse(q.dueBefore), {
    message: 'dueAfter must be before dueBefore',
    path: ['dueBefore'],
  });

export const taskListSchema = z
  .object({
    items: z.array(taskSchema),
    nextCursor: z
      .string()
      .nullable()
      .describe('Pass as `cursor` for the next page; null on the last'),
  })
  .meta({ id: 'TaskList' });

export const changesQuerySchema = z.strictObject({
  since: z
    .string()
    .max(300)
    .optional()
    .describe('The `next` of the previous answer; omit it for a full sync'),
  limit: queryInteger(1, 500).default(100),
});

export const taskChangesSchema = z
  .object({
    changes: z
      .array(taskSchema)
      .describe('Tasks created or changed since the token, each as it is now; replace yours'),
    deleted: z
      .array(z.object({ id: uuid(), deletedAt: z.iso.datetime() }))
      .describe('Tasks deleted since the token; an id you never saw can be ignored'),
    next: z.string().describe('Opaque: pass it as `since` next time, even when hasMore is false'),
    hasMore: z.boolean().describe('More changes are waiting: call again with `next` at once'),
  })
  .meta({ id: 'TaskChanges' });

export type Task = z.infer<typeof taskSchema>;
export type NewTask = z.infer<typeof createTaskSchema>;
export type TaskPatch = z.infer<typeof updateTaskSchema>;
