import { execFileSync } from 'node:child_process';
import { freePort } from '../backend/test/support/ports.ts';
import {
  repoRoot,
  startBackend,
  startServer,
  type BackendProcess,
  type ServerProcess,
} from '../backend/test/support/processes.ts';

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

/** The node:http + pg baseline (bench/baseline-server.ts), always from TypeScript via tsx. */
export async function startBaseline(
  databaseUrl: string,
  nodeArgs: string[] = [],
): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name: 'node:http + pg',
    args: [...nodeArgs, '--import', 'tsx', 'bench/baseline-server.ts'],
    port,
    readyPath: '/api/health/ready',
    env: { PORT: String(port), DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: '10' },
  });
}
