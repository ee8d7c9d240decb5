import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/embedded-postgres.ts';
import { createLogger } from '../src/logger.ts';
import { freePort } from './support/ports.ts';

/**
 * One real PostgreSQL for the whole run: TEST_DATABASE_URL when given (it must be allowed to
 * CREATE DATABASE), otherwise an embedded PostgreSQL 16 in a throwaway directory. Each test file
 * creates its own database in it (support/database.ts), so files run in parallel without sharing rows.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
  }
}

let embedded: EmbeddedDatabase | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const given = process.env['TEST_DATABASE_URL'];
  if (given) {
    project.provide('adminDatabaseUrl', given);
    return;
  }
  dir = await mkdtemp(path.join(tmpdir(), 'tasks-backend-test-'));
  embedded = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    logger: createLogger('warn'),
  });
  project.provide('adminDatabaseUrl', embedded.url);
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}
