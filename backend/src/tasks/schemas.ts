import { z } from 'zod';
import { instant, queryInteger, text, visibleText } from '../validation.ts';

const title = visibleText(1, 200);
const notes = text(0, 10_000);
const dueAt = instant().nullable().describe('RFC 3339 date-time, or null for no due date');

export const taskSchema = z
  .object({
    id: z.uuid(),
    title: z.string(),
    notes: z.string(),
    completed: z.boolean(),
    dueAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    version: z.int().min(1).describe('Starts at 1 and grows by one on every change; the ETag'),
  })
  .meta({ id: 'Task' });

export const createTaskSchema = z
  .strictObject({
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

export const taskIdSchema = z.uuid();

export const listQuerySchema = z.strictObject({
  limit: queryInteger(1, 100).default(50),
  cursor: z.string().max(200).optional(),
  completed: z.enum(['true', 'false']).optional(),
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

export type Task = z.infer<typeof taskSchema>;
export type NewTask = z.infer<typeof createTaskSchema>;
export type TaskPatch = z.infer<typeof updateTaskSchema>;
