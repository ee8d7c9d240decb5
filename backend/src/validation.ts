import { z } from 'zod';
import { invalid, type FieldProblem } from './errors.ts';

/**
 * At most this many problems are listed, each name at most this long: an answer must stay small
 * whatever the request (a body of 100,000 unknown keys once got an 8.8 MB answer).
 */
const maxProblems = 20;
const maxNameLength = 100;

const shortName = (name: string): string =>
  name.length > maxNameLength ? `${name.slice(0, maxNameLength)}…` : name;

/**
 * Parses `value` with `schema`, or throws a validation error that lists the field problems (the
 * first 20, and how many more there are). `name` prefixes the reported names (a header's name:
 * its value has no fields of its own).
 */
export function parse<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: FieldProblem['in'],
  name?: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  let total = 0;
  const errors: FieldProblem[] = [];
  const add = (path: string[], reason: string) => {
    total += 1;
    if (errors.length < maxProblems) {
      errors.push({ name: shortName(path.join('.')) || '(root)', in: where, reason });
    }
  };
  for (const issue of result.error.issues) {
    const path = [...(name === undefined ? [] : [name]), ...issue.path.map(String)];
    // Each unknown key is reported under its own name, not under its parent object.
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys.slice(0, maxProblems))
        add([...path, key], 'is not a known field');
      total += Math.max(0, issue.keys.length - maxProblems);
    } else {
      add(path, issue.message);
    }
  }
  const noun = where === 'body' ? 'request body' : `${where} parameters`;
  const more = total > errors.length ? `; and ${total - errors.length} more` : '';
  throw invalid(
    `The ${noun} has ${total} problem${total === 1 ? '' : 's'}: ` +
      errors.map((e) => `${e.name} ${e.reason}`).join('; ') +
      more,
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

/**
 * A UUID in its hyphenated hex form, of any version or variant: what PostgreSQL's uuid type
 * accepts and returns. Not `z.uuid()`, which admits only RFC 9562 versions and variants: an id
 * created outside this API (a restore, an import, a client's own scheme) would then be stored but
 * unreadable, and a cursor or sync token naming it refused.
 */
export const uuid = () => z.guid();
