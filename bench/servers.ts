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
