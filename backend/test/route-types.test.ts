import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { routesFor, type AnyRoute } from '../src/http/routes.ts';

/**
 * What the compiler catches in a route table. Each `@ts-expect-error` below is checked by
 * `npm run typecheck` (tsc fails when a marked line compiles, i.e. when a check is lost); the
 * test itself only confirms the declarations still build.
 */

const thing = z.object({ id: z.string(), size: z.int() }).meta({ id: 'TypeTestThing' });
const route = routesFor<{ readonly things: { find(id: string): { id: string; size: number } } }>();

const declared = [
  route({
    method: 'get',
    path: '/things/{id}',
    operationId: 'getThing',
    summary: 'A thing',
    tags: ['things'],
    params: z.object({ id: z.string() }),
    responses: { 200: { description: 'The thing', body: thing }, 304: { description: 'Same' } },
    handler: ({ params }, { things }) => {
      const found = things.find(params.id);
      return found.size > 0 ? { status: 200, body: found } : { status: 304 };
    },
  }),
  route({
    method: 'get',
    path: '/undeclared-status',
    operationId: 'undeclaredStatus',
    summary: 'x',
    tags: ['things'],
    responses: { 200: { description: 'ok' } },
    // @ts-expect-error 201 is not a declared response
    handler: () => ({ status: 201 }),
  }),
  route({
    method: 'get',
    path: '/wrong-body',
    operationId: 'wrongBody',
    summary: 'x',
    tags: ['things'],
    responses: { 200: { description: 'ok', body: thing } },
    // @ts-expect-error size must be a number
    handler: () => ({ status: 200, body: { id: 'a', size: 'big' } }),
  }),
  route({
    method: 'get',
    path: '/no-caller',
    operationId: 'noCaller',
    summary: 'x',
    tags: ['things'],
    responses: { 200: { description: 'ok', body: thing } },
    handler: ({ caller }) => ({
      status: 200,
      // @ts-expect-error without `auth: true` there is no caller
      body: { id: caller.user.id, size: 1 },
    }),
  }),
];

// @ts-expect-error a table needs the services its routes use
const missingService: readonly AnyRoute<{ readonly other: number }>[] = declared;

describe('route tables', () => {
  it('declare their routes for the compiler to check (see the @ts-expect-error lines)', () => {
    expect(declared.map((r) => r.operationId)).toEqual([
      'getThing',
      'undeclaredStatus',
      'wrongBody',
      'noCaller',
    ]);
    expect(missingService).toBe(declared);
  });
});
