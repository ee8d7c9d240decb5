import { execFileSync } from 'node:child_process';
import { freePort } from '../backend/test/support/ports.ts';
import {
  repoRoot,
  startBackend,
  startServer,
  type BackendProcess,
  type ServerProcess,
} from '../backend/test/support/processes.ts';
import type { Baseline } from './baselines.ts';
import type { BenchDatabase } from './database.ts';
import type { HttpTarget } from './measure.ts';

/** The server processes a benchmark compares; each is stopped by the harness, by its PID. */

/** `npm run build`, so that the backend runs as the image runs it (`node backend/dist/main.js`). */
export function buildBackend(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
}

/** The backend as a production deployment runs it, with `env` on top. */
export function startBenchBackend(
  name: string,
  databaseUrl: string,
  options: { source: boolean; env?: Record<string, string>; nodeArgs?: string[] },
): Promise<BackendProcess> {
  return startBackend(
    name,
    {
      // What a production deployment runs: NODE_ENV=production, info logs, metrics on.
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      METRICS_ENABLED: 'true',
      DATABASE_URL: databaseUrl,
      SHUTDOWN_DELAY_MS: '0',
      ...options.env,
    },
    { entry: options.source ? 'source' : 'dist', nodeArgs: options.nodeArgs ?? [] },
  );
}

/** A node:http + pg baseline (bench/baseline-server.ts), always from TypeScript via tsx. */
export async function startBaseline(
  baseline: Baseline,
  databaseUrl: string,
  nodeArgs: string[] = [],
): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name: baseline.label,
    args: [...nodeArgs, '--import', 'tsx', 'bench/baseline-server.ts'],
    port,
    readyPath: '/api/health/ready',
    env: {
      BASELINE: baseline.name,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_MAX: '10',
    },
  });
}

export interface TargetSpec extends Omit<HttpTarget, 'server' | 'statements'> {
  start: (databaseUrl: string) => Promise<ServerProcess>;
}

/**
 * Starts every target, one after the other, each on a database role of its own so that
 * PostgreSQL counts its statements apart. Stops those already started when one fails.
 */
export async function startTargets(
  db: BenchDatabase,
  specs: readonly TargetSpec[],
): Promise<{ targets: HttpTarget[]; stop: () => Promise<void> }> {
  const targets: HttpTarget[] = [];
  const stop = async () => {
    for (const { server } of targets) await server.stop();
  };
  try {
    for (const { start, ...spec } of specs) {
      const role = await db.role(spec.key);
      targets.push({ ...spec, server: await start(role.url), statements: role.statements });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { targets, stop };
}
