import { z } from 'zod';
import { badRequest, type FieldProblem } from './errors.ts';

/** Parses `value` with `schema`, or throws a 400 problem that lists every field problem. */
export function parse<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: FieldProblem['in'],
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.flatMap((issue): FieldProblem[] => {
    const path = issue.path.map(String);
    // Each unknown key is reported under its own name, not under its parent object.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        name: [...path, key].join('.'),
        in: where,
        reason: 'is not a known field',
      }));
    }
    return [{ name: path.join('.') || '(root)', in: where, reason: issue.message }];
  });
  const noun = where === 'body' ? 'request body' : `${where} parameters`;
  throw badRequest(
    `The ${noun} has ${errors.length} problem${errors.length === 1 ? '' : 's'}: ` +
      errors.map((e) => `${e.name} ${e.reason}`).join('; '),
    errors,
  );
}

/** Text that PostgreSQL can store: no NUL characters. */
export const text = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    // eslint-disable-next-line no-control-regex -- NUL is exactly what PostgreSQL text cannot hold
    .regex(/^[^\u0000]*$/, 'must not contain NUL characters');
