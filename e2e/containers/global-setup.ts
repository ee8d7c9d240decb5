import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureDaemon, ensureTools, type DockerDaemon } from './docker-host.ts';
import { buildBackendImages, type BackendImages } from './images.ts';
import { log } from './shell.ts';
import { ensureStandIns } from './stand-ins.ts';

/**
 * What every container suite needs, done once: the tools (apt-get), a Docker engine (started here
 * when none runs, and stopped by its PID at the end), the stand-in images (cached between runs) and
 * the backend images built from the project's Dockerfile.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    backendImages: BackendImages;
  }
}

let daemon: DockerDaemon | undefined;
let workDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const started = Date.now();
  workDir = await mkdtemp(join(tmpdir(), 'tasks-containers-'));
  await ensureTools();
  daemon = await ensureDaemon(workDir);
  const built = await ensureStandIns(workDir);
  log(built.length ? `built stand-ins: ${built.join(', ')}` : 'stand-in images cached');
  project.provide('backendImages', await buildBackendImages());
  log(`setup took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

export async function teardown(): Promise<void> {
  try {
    await daemon?.stop();
  } finally {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }
}
