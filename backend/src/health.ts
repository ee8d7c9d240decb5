import { Router, type Response } from 'express';
import type { Db } from './db.ts';

/**
 * Liveness never touches the database (a database outage must not restart every pod);
 * readiness does, bounded in time and cached for about a second so probes cannot hammer it.
 */

export interface Lifecycle {
  /** Set once migrations are applied (or known to be). */
  migrated: boolean;
  /** Set the moment shutdown begins; readiness answers 503 from then on. */
  shuttingDown: boolean;
}

export interface ReadinessResult {
  ready: boolean;
  checks: {
    database: 'ok' | 'unavailable';
    migrations: 'ok' | 'pending';
    shutdown: 'no' | 'in progress';
  };
}

export function createReadiness(
  db: Db,
  lifecycle: Lifecycle,
  options: { timeoutMs: number; cacheMs?: number },
): () => Promise<ReadinessResult> {
  const cacheMs = options.cacheMs ?? 1000;
  let cached: { at: number; ok: boolean } | undefined;
  let inFlight: Promise<boolean> | undefined;

  const databaseOk = (): Promise<boolean> => {
    if (cached && Date.now() - cached.at < cacheMs) return Promise.resolve(cached.ok);
    // Concurrent probes share one check.
    inFlight ??= db
      .ping(options.timeoutMs)
      .then(
        () => true,
        () => false,
      )
      .then((ok) => {
        cached = { at: Date.now(), ok };
        inFlight = undefined;
        return ok;
      });
    return inFlight;
  };

  return async () => {
    const database = (await databaseOk()) ? 'ok' : 'unavailable';
    const checks = {
      database,
      migrations: lifecycle.migrated ? 'ok' : 'pending',
      shutdown: lifecycle.shuttingDown ? 'in progress' : 'no',
    } as const;
    return {
      ready: database === 'ok' && lifecycle.migrated && !lifecycle.shuttingDown,
      checks,
    };
  };
}

/** Every answer names the version, so a rollout (or a load balancer) shows which build served it. */
export function healthRouter(readiness: () => Promise<ReadinessResult>, version: string): Router {
  const router = Router();
  const answerReady = async (res: Response): Promise<void> => {
    const result = await readiness();
    // Health answers are never cached by anything in between.
    res.setHeader('Cache-Control', 'no-store');
    res
      .status(result.ready ? 200 : 503)
      .json({ status: result.ready ? 'ok' : 'unavailable', version, ...result.checks });
  };
  router.get('/api/health/live', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok', version });
  });
  router.get('/api/health/ready', (_req, res) => answerReady(res));
  router.get('/api/health', (_req, res) => answerReady(res));
  return router;
}
