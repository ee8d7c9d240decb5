import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../backend/test/support/processes.ts';
import { sameStatements } from './baselines.ts';
import type { BenchOptions } from './cli.ts';
import { startBenchDatabase } from './database.ts';
import { loadHttp } from './measure.ts';
import { formatSummary, summariseProfileFile, type ProfileWindow } from './profile-summary.ts';
import { fmt } from './report.ts';
import { newTargetState, selectScenarios } from './scenarios.ts';
import { buildBackend, startBaseline, startBenchBackend } from './servers.ts';
import { createTaskWriter } from './writer.ts';

/**
 * `npm run bench -- --profile`: CPU profiles (node --cpu-prof) of the backend and the baseline
 * running its statements (same-statements), one after the other, under the first scenario --only
 * names (GET-by-id by default), summarised per request.
 */
export async function profile(
  options: BenchOptions,
  resultsDir: string,
  log: (line: string) => void,
): Promise<void> {
  if (!options.source) buildBackend();
  const scenario = selectScenarios(options.only)[0]!;
  const db = await startBenchDatabase({ users: options.users, tasksPerUser: options.tasksPerUser });
  const writer = await createTaskWriter(db.url, db.fixtures);
  const dir = path.join(resultsDir, `profile-${Date.now()}`);
  try {
    const rates: Record<string, number> = {};
    for (const name of ['backend', 'baseline'] as const) {
      const profileDir = path.join(dir, name);
      await mkdir(profileDir, { recursive: true });
      const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
      const server =
        name === 'backend'
          ? await startBenchBackend('backend (profiled)', db.url, {
              source: options.source,
              nodeArgs,
            })
          : await startBaseline(sameStatements, db.url, nodeArgs);
      let requests = 0;
      let window: ProfileWindow | undefined;
      const state = newTargetState();
      const stopWriter = scenario.writer ? writer.start() : undefined;
      try {
        // Start-up, the cold sync that brings sync tokens to the present, and the warm-up are
        // profiled too, but left out of the summary: only the measurement's samples count.
        await scenario.prepare?.(server.baseUrl, db.fixtures, state);
        const load = (seconds: number) =>
          loadHttp(server, scenario, db.fixtures, {
            seconds,
            connections: options.connections,
            state,
          });
        if (options.warmup > 0) await load(options.warmup);
        const fromUs = Number(process.hrtime.bigint() / 1000n);
        const measured = await load(options.duration);
        window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
        requests = measured.requests;
        rates[name] = measured.rps;
      } finally {
        await stopWriter?.();
        await server.stop();
      }
      const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no .cpuprofile written in ${profileDir}`);
      log(`\n== ${name}: ${fmt(rates[name])} req/s under ${scenario.label}`);
      log(formatSummary(await summariseProfileFile(path.join(profileDir, file), window), requests));
      log(
        `profile: ${path.relative(repoRoot, path.join(profileDir, file))} (Chrome DevTools → Performance)`,
      );
    }
    log(
      `\nbackend / node:http req/s while profiled: ${fmt(rates['backend']! / rates['baseline']!, 2)}`,
    );
  } finally {
    await writer.end();
    await db.dispose();
  }
}
