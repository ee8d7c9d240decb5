import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../backend/test/support/processes.ts';
import { twoQuery } from './baselines.ts';
import type { BenchOptions } from './cli.ts';
import { startBenchDatabase } from './database.ts';
import { loadHttp } from './measure.ts';
import { formatSummary, summariseProfileFile } from './profile-summary.ts';
import { fmt } from './report.ts';
import { scenarios } from './scenarios.ts';
import { buildBackend, startBaseline, startBenchBackend } from './servers.ts';

/**
 * `npm run bench -- --profile`: CPU profiles (node --cpu-prof) of the backend and the two-query
 * baseline, one after the other, under GET-by-id, summarised per request.
 */
export async function profile(
  options: BenchOptions,
  resultsDir: string,
  log: (line: string) => void,
): Promise<void> {
  if (!options.source) buildBackend();
  const db = await startBenchDatabase({ users: options.users, tasksPerUser: options.tasksPerUser });
  const dir = path.join(resultsDir, `profile-${Date.now()}`);
  try {
    const scenario = scenarios[0]!;
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
          : await startBaseline(twoQuery, db.url, nodeArgs);
      let requests = 0;
      try {
        const load = (seconds: number) =>
          loadHttp(server, scenario, db.fixtures, { seconds, connections: options.connections });
        if (options.warmup > 0) requests += (await load(options.warmup)).requests;
        const measured = await load(options.duration);
        requests += measured.requests;
        rates[name] = measured.rps;
      } finally {
        await server.stop();
      }
      const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no .cpuprofile written in ${profileDir}`);
      log(`\n== ${name}: ${fmt(rates[name])} req/s under ${scenario.label}`);
      log(formatSummary(await summariseProfileFile(path.join(profileDir, file)), requests));
      log(
        `profile: ${path.relative(repoRoot, path.join(profileDir, file))} (Chrome DevTools → Performance)`,
      );
    }
    log(
      `\nbackend / node:http req/s while profiled: ${fmt(rates['backend']! / rates['baseline']!, 2)}`,
    );
  } finally {
    await db.dispose();
  }
}
