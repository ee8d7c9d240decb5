import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { composeCommand, ensureTools } from './docker-host.ts';
import { output } from './shell.ts';

/**
 * The monitoring overlay as Compose itself reads it, merged over docker-compose.yml. (Its images
 * cannot be pulled here, so it is never started; the compose stack test runs the base file.)
 */

const repo = fileURLToPath(new URL('../..', import.meta.url));
let workDir: string;

beforeAll(async () => {
  await ensureTools();
  workDir = await mkdtemp(join(tmpdir(), 'tasks-overlay-'));
});
afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('docker-compose.monitoring.yml', () => {
  it('merges with docker-compose.yml into a valid project that puts Prometheus beside both replicas, not the database', async () => {
    const envFile = join(workDir, '.env');
    await writeFile(envFile, 'DOMAIN=api.example.test\nGRAFANA_ADMIN_PASSWORD=test\n');
    const [command, ...prefix] = await composeCommand();
    const merged = parse(
      await output(command, [
        ...prefix,
        '--project-directory',
        repo,
        '--env-file',
        envFile,
        '-f',
        join(repo, 'docker-compose.yml'),
        '-f',
        join(repo, 'docker-compose.monitoring.yml'),
        'config',
      ]),
    );
    for (const replica of ['backend-a', 'backend-b']) {
      expect(Object.keys(merged.services[replica].networks).sort()).toEqual([
        'database',
        'edge',
        'monitoring',
      ]);
    }
    expect(merged.services).not.toHaveProperty('backend');
    expect(Object.keys(merged.services.prometheus.networks)).not.toContain('database');
    expect(merged.services.prometheus.volumes.length).toBeGreaterThan(0);
  });
});
