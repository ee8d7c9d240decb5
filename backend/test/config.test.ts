import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, configKeys, loadConfig } from '../src/config.ts';
import { backendEntry } from './support/processes.ts';

const run = promisify(execFile);

describe('configuration', () => {
  it('when nothing is set, then the documented defaults apply', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.metricsPort).toBe(9464);
    expect(config.database.url).toBeUndefined();
    expect(config.database.poolMax).toBe(10);
    expect(config.database.migrateOnStart).toBe(true);
    expect(config.shutdown).toEqual({ delayMs: 0, timeoutMs: 10_000 });
    expect(Object.isFrozen(config.database)).toBe(true);
  });

  it('when NODE_ENV=production, then the shutdown delay defaults to 5 s', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://u:p@db:5432/app',
    });
    expect(config.shutdown.delayMs).toBe(5000);
  });

  it('when several variables are wrong, then one error names every one of them', () => {
    let error: unknown;
    try {
      loadConfig({
        NODE_ENV: 'production',
        PORT: 'eighty',
        DATABASE_POOL_MAX: '0',
        LOG_LEVEL: 'loud',
        MIGRATE_ON_START: 'yes',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = (error as ConfigError).problems.map((p) => p.split(' ')[0]);
    expect(names.sort()).toEqual([
      'DATABASE_POOL_MAX',
      'DATABASE_URL',
      'LOG_LEVEL',
      'MIGRATE_ON_START',
      'PORT',
    ]);
  });

  it('when the session lifetimes are set, then sessions slide within the cap and tombstones last their retention', () => {
    expect(loadConfig({}).auth).toMatchObject({
      tokenTtlSeconds: 30 * 86_400,
      sessionMaxLifetimeSeconds: 365 * 86_400,
    });
    expect(loadConfig({}).sync).toEqual({ tombstoneRetentionSeconds: 30 * 86_400 });
    const custom = loadConfig({
      AUTH_TOKEN_TTL_SECONDS: '3600',
      AUTH_SESSION_MAX_LIFETIME_SECONDS: '7200',
      SYNC_TOMBSTONE_RETENTION_SECONDS: '86400',
    });
    expect(custom.auth.sessionMaxLifetimeSeconds).toBe(7200);
    expect(custom.sync.tombstoneRetentionSeconds).toBe(86_400);
    // A cap below the lifetime a token starts with could never hold; nor can a retention of 0.
    expect(() =>
      loadConfig({ AUTH_TOKEN_TTL_SECONDS: '7200', AUTH_SESSION_MAX_LIFETIME_SECONDS: '3600' }),
    ).toThrow(/AUTH_SESSION_MAX_LIFETIME_SECONDS must be at least AUTH_TOKEN_TTL_SECONDS/);
    expect(() => loadConfig({ SYNC_TOMBSTONE_RETENTION_SECONDS: '0' })).toThrow(
      /SYNC_TOMBSTONE_RETENTION_SECONDS/,
    );
  });

  it('when DATABASE_URL is not a postgres URL, then it is refused', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x/y' })).toThrow(/DATABASE_URL/);
  });

  describe('DATABASE_URL_FILE', () => {
    const withFile = async (contents: string, body: (file: string) => void) => {
      const dir = await mkdtemp(path.join(tmpdir(), 'config-test-'));
      try {
        const file = path.join(dir, 'database-url');
        await writeFile(file, contents);
        body(file);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };

    it('when it names a file holding a URL, then that URL is used (trailing newline and all)', () =>
      withFile('postgres://u:secret@db:5432/app\n', (file) => {
        const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL_FILE: file });
        expect(config.database.url).toBe('postgres://u:secret@db:5432/app');
      }));

    it('when the file holds something else, then it is named and its contents are not', () =>
      withFile('mysql://u:secret@db/app', (file) => {
        expect(() => loadConfig({ DATABASE_URL_FILE: file })).toThrow(
          expect.objectContaining({
            message: expect.not.stringContaining('secret') as unknown,
            problems: [
              `DATABASE_URL_FILE ${file} does not hold a postgres:// or postgresql:// URL`,
            ],
          }),
        );
      }));

    it('when the file is missing, or DATABASE_URL is set too, then each is a problem', () => {
      expect(() => loadConfig({ DATABASE_URL_FILE: '/nonexistent/url' })).toThrow(
        /DATABASE_URL_FILE \/nonexistent\/url cannot be read \(ENOENT\)/,
      );
      expect(() =>
        loadConfig({ DATABASE_URL: 'postgres://a@b/c', DATABASE_URL_FILE: '/nonexistent/url' }),
      ).toThrow(/both set/);
    });
  });

  it('when a value is empty, then it counts as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(3000);
  });

  it.each(['yes', '10.0.0.0/33', '1.2.3.4/8/9', 'loopback,not-an-address'])(
    'when TRUST_PROXY is %s, then it is refused at start-up, by name',
    (value) => {
      expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY must be/);
    },
  );

  it.each([
    ['true', true],
    ['2', 2],
    ['loopback, 10.0.0.0/8, ::1', 'loopback, 10.0.0.0/8, ::1'],
  ])('when TRUST_PROXY is %s, then Express gets %s', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it('when the real process starts in production without DATABASE_URL, then it exits 1 with one line', async () => {
    const result = await run(process.execPath, [...backendEntry.source], {
      env: { ...process.env, NODE_ENV: 'production', DATABASE_URL: '', PORT: '0' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /DATABASE_URL \(or DATABASE_URL_FILE\) is required when NODE_ENV=production/,
    );
  });
});

describe('documentation', () => {
  it('the README configuration table lists every variable the schema reads', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const documented = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...configKeys].sort());
  });
});
