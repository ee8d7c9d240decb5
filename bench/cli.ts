import { parseArgs } from 'node:util';
import { scenarios } from './scenarios.ts';

/** `npm run bench -- [options]`: what a run measures, read once from the command line. */

export const allScenarios = scenarios.map((s) => s.name).join(',');

export const usage = `usage: npm run bench -- [options]
  --duration S      seconds measured per scenario and target (default 5)
  --warmup S        seconds of unmeasured load before each measurement (default 1)
  --rounds N        rounds; medians are reported (default 3)
  --connections N   concurrent HTTP connections and pgbench clients (default 10)
  --only LIST       comma-separated scenarios (default all):
                    ${allScenarios}
  --source          run the backend from TypeScript with tsx instead of the compiled backend/dist
  --profile         instead of the comparison: CPU-profile the backend and the baseline under
                    the first scenario --only names (default get-by-id)
  --pipeline        instead of the comparison: each step before the route (Express, metrics,
                    logging, headers, zod, the route table…) measured on its own, no database
  --record          save the run as bench/results/recorded-<date>.json, which git keeps
  --smoke           a few seconds in all, to keep the harness working (CI): the comparison of
                    every scenario, then the pipeline (or only the pipeline, with --pipeline)`;

export interface BenchOptions {
  duration: number;
  warmup: number;
  rounds: number;
  connections: number;
  /** Seeded users, each with a live session, and tasks per user (a tenth of them then deleted). */
  users: number;
  tasksPerUser: number;
  /** Scenario names asked for with --only. */
  only: string[];
  source: boolean;
  profile: boolean;
  pipeline: boolean;
  record: boolean;
  smoke: boolean;
}

/** Stops the process with the usage: exit 0 for --help, 2 for a bad option. */
function exitWithUsage(message: string | undefined): never {
  if (message === undefined) {
    console.log(usage);
    process.exit(0);
  }
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

export function parseBenchArgs(args: string[] = process.argv.slice(2)): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        duration: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '1' },
        rounds: { type: 'string', default: '3' },
        connections: { type: 'string', default: '10' },
        only: { type: 'string', default: allScenarios },
        source: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        pipeline: { type: 'boolean', default: false },
        record: { type: 'boolean', default: false },
        smoke: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    return exitWithUsage((error as Error).message);
  }
  if (values.help) exitWithUsage(undefined);
  if (values.profile && values.pipeline)
    exitWithUsage('--profile and --pipeline exclude each other');
  // A record is what the README quotes: a full run, not a smoke test or a profile.
  if (values.record && (values.smoke || values.profile)) {
    exitWithUsage('--record saves a full comparison or pipeline run, not --smoke or --profile');
  }
  const positive = (name: string, value: string, allowZero = false): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
      exitWithUsage(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
    }
    return n;
  };
  const flags = {
    only: values.only.split(','),
    source: values.source,
    profile: values.profile,
    pipeline: values.pipeline,
    record: values.record,
    smoke: values.smoke,
  };
  return values.smoke
    ? { ...flags, duration: 1, warmup: 0.5, rounds: 1, connections: 4, users: 5, tasksPerUser: 50 }
    : {
        ...flags,
        duration: positive('duration', values.duration),
        warmup: positive('warmup', values.warmup, true),
        rounds: Math.round(positive('rounds', values.rounds)),
        connections: Math.round(positive('connections', values.connections)),
        users: 50,
        tasksPerUser: 1000,
      };
}
