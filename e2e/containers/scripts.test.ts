import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './shell.ts';
import { repo } from './stack.ts';

/**
 * The operator's scripts as files: POSIX sh that passes shellcheck (the stand-ins' entrypoints
 * too), and vps/init-secrets.sh's contract (modes, contents, never overwriting a secret).
 */

async function shellScripts(): Promise<string[]> {
  const found: string[] = [];
  for (const dir of ['backup', 'vps', 'e2e/containers/stand-ins']) {
    for (const entry of await readdir(join(repo, dir), { recursive: true })) {
      if (entry.endsWith('.sh')) found.push(join(dir, entry));
    }
  }
  return found.sort();
}

describe('the shell scripts', () => {
  let workDir = '';
  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'tasks-scripts-'));
  });
  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('pass shellcheck, and the operator scripts are POSIX sh', async () => {
    const scripts = await shellScripts();
    expect(scripts).toEqual(
      expect.arrayContaining(['backup/backup.sh', 'vps/deploy.sh', 'vps/init-secrets.sh']),
    );
    const result = await run('shellcheck', ['--severity=style', ...scripts], {
      cwd: repo,
      allowFailure: true,
    });
    expect(result.stdout + result.stderr).toBe('');
    for (const script of scripts.filter((name) => !name.startsWith('e2e/'))) {
      expect((await readFile(join(repo, script), 'utf8')).split('\n')[0], script).toBe('#!/bin/sh');
    }
  });

  it('init-secrets.sh writes both secrets from one password, 0700/0444, and never overwrites', async () => {
    const env = join(workDir, '.env');
    const secrets = join(workDir, 'secrets');
    await writeFile(env, `POSTGRES_USER=owner_1\nPOSTGRES_DB=app_db\nSECRETS_DIR=${secrets}\n`);
    const first = await run('sh', [join(repo, 'vps/init-secrets.sh'), env]);
    expect(first.stdout).toContain('wrote');
    const password = await readFile(join(secrets, 'postgres_password'), 'utf8');
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    expect(await readFile(join(secrets, 'database_url'), 'utf8')).toBe(
      `postgres://owner_1:${password}@db:5432/app_db`,
    );
    expect((await stat(secrets)).mode & 0o777).toBe(0o700);
    expect((await stat(join(secrets, 'postgres_password'))).mode & 0o777).toBe(0o444);
    expect((await stat(join(secrets, 'database_url'))).mode & 0o777).toBe(0o444);

    const again = await run('sh', [join(repo, 'vps/init-secrets.sh'), env], { allowFailure: true });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to overwrite/);
    expect(await readFile(join(secrets, 'postgres_password'), 'utf8')).toBe(password);

    await writeFile(env, `POSTGRES_USER=bad@user\nSECRETS_DIR=${join(workDir, 'other')}\n`);
    const refused = await run('sh', [join(repo, 'vps/init-secrets.sh'), env], {
      allowFailure: true,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/letters, digits or _/);
  });
});
