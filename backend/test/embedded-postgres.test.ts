import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ensureOsUser,
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../src/embedded-postgres.ts';
import { createLogger } from '../src/logger.ts';
import { capturingLogger } from './support/log-capture.ts';
import { freePort } from './support/ports.ts';

const logger = createLogger('silent');
let dir: string | undefined;
let first: EmbeddedDatabase | undefined;

afterAll(async () => {
  await first?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('embedded PostgreSQL', () => {
  it('when a second server is started on a data directory in use, then the error says why (a second npm start)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tasks-backend-embedded-'));
    const dataDir = path.join(dir, 'pg');
    first = await startEmbeddedPostgres({ dataDir, port: await freePort(), logger });

    const second = startEmbeddedPostgres({ dataDir, port: await freePort(), logger });

    await expect(second).rejects.toThrow(
      /The embedded PostgreSQL did not start .*another `npm start`.*PostgreSQL said: .*lock file/,
    );
  });

  // As root (CI, a fresh container) the server must run as another OS user, which `npm start`
  // creates when it is missing. Tried with a throwaway name: the real `postgres` user is in use.
  // Without root nothing can create it (nor is it needed): the error then says what to do.
  it('when the OS user is missing, then as root it is created as a system user and the log says so; otherwise the error says what to do', () => {
    const name = `tasks-test-${randomBytes(3).toString('hex')}`;
    const { logger: capturing, lines } = capturingLogger();
    if (process.getuid?.() !== 0) {
      expect(() => ensureOsUser(name, capturing)).toThrow(
        new RegExp(`creating the OS user "${name}" for it failed .*Create it yourself`),
      );
      return;
    }
    try {
      const created = ensureOsUser(name, capturing);

      expect(Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }))).toBe(created.uid);
      expect(created.uid).toBeLessThan(1000); // a system user
      expect(execFileSync('getent', ['passwd', name], { encoding: 'utf8' })).toMatch(
        /:\/usr\/sbin\/nologin\n$/,
      );
      expect(lines()).toEqual([
        expect.objectContaining({
          user: name,
          msg: expect.stringMatching(/created the system user/) as unknown,
        }),
      ]);
      // A second start finds the user and says nothing.
      expect(ensureOsUser(name, capturing)).toEqual(created);
      expect(lines()).toHaveLength(1);
    } finally {
      spawnSync('userdel', [name]);
      spawnSync('groupdel', [name]);
    }
  });
});
