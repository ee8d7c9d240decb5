import { z } from 'zod';
import { invalid, type FieldProblem } from './errors.ts';

/**
 * Parses `value` with `schema`, or throws a validation error that lists every field problem.
 * `name` prefixes the reported names (a header's name: its value has no fields of its own).
 */
export function parse<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: FieldProblem['in'],
  name?: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.flatMap((issue): FieldProblem[] => {
    const path = [...(name === undefined ? [] : [name]), ...issue.path.map(String)];
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
  throw invalid(
    `The ${noun} has ${errors.length} problem${errors.length === 1 ? '' : 's'}: ` +
      errors.map((e) => `${e.name} ${e.reason}`).join('; '),
    errors,
  );
}

/** Text that PostgreSQL can store as sent: no NUL characters, no lone UTF-16 surrogates. */
export const text = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    // eslint-disable-next-line no-control-regex -- NUL is exactly what PostgreSQL text cannot hold
    .regex(/^[^\u0000]*$/, 'must not contain NUL characters')
    // A lone surrogate ("\ud800") would be stored as U+FFFD: text the client never sent.
    .refine(
      (s) => (s as string & { isWellFormed(): boolean }).isWellFormed(),
      'must be well-formed Unicode',
    );

/**
 * An RFC 3339 date-time with an offset whose instant PostgreSQL's timestamptz can hold the way
 * clients read it back: years 1 to 9999 in UTC (year 0 is refused by PostgreSQL, and an instant
 * before year 1 would come back as a negative year no client parses).
 */
export const instant = () =>
  z.iso.datetime({ offset: true }).refine((value) => {
    const year = new Date(value).getUTCFullYear();
    // NaN: not a date-time at all, which the format check already reports.
    return Number.isNaN(year) || (year >= 1 && year <= 9999);
  }, 'must be between years 1 and 9999 (UTC)');

/**
 * Text a person can see: at least one character that is not white space, a control or a format
 * character (a zero-width space alone is not a title).
 */
export const visibleText = (min: number, max: number) =>
  // An empty string is left to the length check, so it is reported once.
  text(min, max).regex(
    /^$|[^\p{White_Space}\p{Cc}\p{Cf}\p{Z}]/u,
    'must contain a visible character',
  );

/**
 * A whole number in a query string, written in plain decimal digits as the document says
 * (`integer`): `0x10`, `1e1`, `10.0` and ` 10 ` are refused rather than coerced.
 */
export const queryInteger = (min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value),
    z.int({ error: 'must be a whole number in decimal digits' }).min(min).max(max),
  );
