import os from 'node:os';
import path from 'node:path';
import { freePort } from '../backend/test/support/ports.ts';
import { repoRoot, startServer, type ServerProcess } from '../backend/test/support/processes.ts';
import { waitFor } from '../backend/test/support/wait.ts';
import type { BenchOptions } from './cli.ts';
import type { Fixture } from './database.ts';
import { loadHttp, type Measurement } from './measure.ts';
import { pieceNamed, pipelinePath, pipelinePieces, type PipelinePiece } from './pipeline-pieces.ts';
import {
  describeMachine,
  describeSource,
  fmt,
  loadAverage,
  machineLine,
  machineSummary,
  markdownTable,
  medianOf,
  saveResults,
} from './report.ts';
import { newTargetState, type Scenario } from './scenarios.ts';

/**
 * `npm run bench -- --pipeline`: what each step before the route costs, on its own. Every piece
 * (bench/pipeline-pieces.ts) runs as a server of its own in front of the same trivial JSON route,
 * with no database. In each round, in a rotating order, every piece is measured right after a
 * measurement of bare Express: a piece's cost is its CPU time per request minus that of the
 * Express measurement just before it (the median over rounds, with the smallest and largest).
 * Pairs, because the box drifts by a fifth over minutes (tried: the same server measured in
 * three rounds), and CPU per request, which other work on the box moves far less than req/s.
 */

/** The request, as the API's clients send it: a bearer token (which no piece here checks). */
const scenario: Scenario = {
  name: 'get-by-id',
  label: `GET ${pipelinePath}`,
  method: 'GET',
  request: () => ({ path: pipelinePath }),
  auth: true,
  expect: 200,
};
const fixture: Fixture = {
  token: 'bench-token-of-43-characters-like-the-real-one'.slice(0, 43),
  tokenHash: Buffer.alloc(32),
  userId: '',
  taskId: '',
};

/** Per piece: its measurement, and bare Express's just before it. */
type PipelineRound = Record<string, { piece: Measurement; express: Measurement }>;

async function startPiece(piece: PipelinePiece): Promise<ServerProcess> {
  const port = await freePort();
  return startServer({
    name: `pipeline: ${piece.name}`,
    args: ['--import', 'tsx', 'bench/pipeline-server.ts'],
    env: { PIPELINE: piece.name, PORT: String(port), NODE_ENV: 'production' },
    port,
    readyPath: pipelinePath,
  });
}

/** Each piece answers the same body, sets what it sets, and logs when it logs. */
async function checkPieces(servers: ReadonlyMap<PipelinePiece, ServerProcess>): Promise<void> {
  let expected: string | undefined;
  for (const [piece, server] of servers) {
    const res = await fetch(`${server.baseUrl}${pipelinePath}`, {
      headers: { authorization: `Bearer ${fixture.token}` },
    });
    const body = await res.text();
    expected ??= body;
    if (res.status !== 200 || body !== expected) {
      throw new Error(`${piece.name}: answered ${res.status} ${body}, not 200 ${expected}`);
    }
    if (piece.sets && !res.headers.has(piece.sets)) {
      throw new Error(`${piece.name}: no ${piece.sets} header; is it wired?`);
    }
    if (piece.logs) {
      await waitFor(
        `${piece.name} to log the request`,
        () => server.logs().some((line) => line['msg'] === 'request completed'),
        { timeoutMs: 5000, intervalMs: 20 },
      );
    } else if (server.stdoutBytes() > 0) {
      throw new Error(`${piece.name}: writes to stdout, but is not declared to log`);
    }
  }
}

/** Per piece: medians, and its cost over the bare Express measured just before it. */
function summarise(rounds: readonly PipelineRound[]) {
  const expressRuns = rounds.flatMap((round) => Object.values(round).map((pair) => pair.express));
  return pipelinePieces.map((piece) => {
    const pairs = rounds.flatMap((round) => (round[piece.name] ? [round[piece.name]!] : []));
    const measured = piece.name === 'express' ? expressRuns : pairs.map((pair) => pair.piece);
    const each = (f: (m: Measurement) => number | undefined) =>
      measured.map((m) => f(m) ?? NaN).filter(Number.isFinite);
    const costs = pairs
      .map((pair) => (pair.piece.cpuUsPerRequest ?? NaN) - (pair.express.cpuUsPerRequest ?? NaN))
      .filter(Number.isFinite);
    return {
      piece: piece.name,
      label: piece.label,
      measurements: measured.length,
      rps: medianOf(each((m) => m.rps)),
      p50Ms: medianOf(each((m) => m.p50Ms)),
      p99Ms: medianOf(each((m) => m.p99Ms)),
      cpuUsPerRequest: medianOf(each((m) => m.cpuUsPerRequest)),
      cpuUsOverExpress: medianOf(costs),
      cpuUsOverExpressMin: Math.min(...costs),
      cpuUsOverExpressMax: Math.max(...costs),
      rpsPerExpress: medianOf(pairs.map((pair) => pair.piece.rps / pair.express.rps)),
      logBytesPerRequest: medianOf(each((m) => m.logBytesPerRequest)),
      failures: measured.reduce((n, m) => n + m.failures, 0),
    };
  });
}

type PipelineRow = ReturnType<typeof summarise>[number];

export function pipelineTable(rows: readonly PipelineRow[]): string[] {
  const signed = (n: number) => (n > 0 ? `+${fmt(n, 1)}` : fmt(n, 1));
  return markdownTable([
    [
      'piece',
      'req/s',
      'p50 / p99 ms',
      'CPU µs/req',
      'CPU µs/req over bare Express (min…max)',
      'req/s / bare Express',
      'log bytes/req',
    ],
    ...rows.map((row) => [
      row.piece,
      fmt(row.rps),
      `${fmt(row.p50Ms, 2)} / ${fmt(row.p99Ms, 2)}`,
      fmt(row.cpuUsPerRequest, 1),
      row.piece === 'express'
        ? ''
        : `${signed(row.cpuUsOverExpress)} (${signed(row.cpuUsOverExpressMin)}…${signed(row.cpuUsOverExpressMax)})`,
      row.piece === 'express' ? '' : fmt(row.rpsPerExpress, 2),
      fmt(row.logBytesPerRequest),
    ]),
  ]);
}

/** The pieces the full pipeline is made of: their costs added up, against its own. */
const inFull = ['metrics', 'request-log', 'before-routes', 'route-table'];

export async function pipelineBench(
  options: BenchOptions,
  resultsDir: string,
  log: (line: string) => void,
): Promise<void> {
  const startedAt = Date.now();
  // The smoke test only keeps it working: a moment per piece.
  const duration = options.smoke ? 0.3 : options.duration;
  const warmup = options.smoke ? 0 : options.warmup;
  const loadAverageAtStart = os.loadavg();
  log(`\npipeline: ${pipelinePieces.length} servers, no database; load average ${loadAverage()}`);
  const servers = new Map<PipelinePiece, ServerProcess>();
  try {
    // Started together: each spends its first second or two loading modules.
    const started = await Promise.allSettled(pipelinePieces.map(startPiece));
    for (const [i, result] of started.entries()) {
      if (result.status === 'fulfilled') servers.set(pipelinePieces[i]!, result.value);
    }
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    await checkPieces(servers);
    log(
      `${options.connections} connections; ${duration} s per measurement after ${warmup} s of warm-up, ${options.rounds} round(s)`,
    );
    const rounds: PipelineRound[] = [];
    const express = servers.get(pieceNamed('express'))!;
    const pieces = [...servers].filter(([piece]) => piece.name !== 'express');
    const measure = async (server: ServerProcess) => {
      const load = (seconds: number) =>
        loadHttp(server, scenario, [fixture], {
          seconds,
          connections: options.connections,
          state: newTargetState(),
        });
      if (warmup > 0) await load(warmup);
      return load(duration);
    };
    for (let r = 0; r < options.rounds; r++) {
      const round: PipelineRound = {};
      const shift = r % pieces.length;
      for (const [piece, server] of [...pieces.slice(shift), ...pieces.slice(0, shift)]) {
        const pair = { express: await measure(express), piece: await measure(server) };
        round[piece.name] = pair;
        const { piece: m } = pair;
        log(
          `round ${r + 1} ${piece.name.padEnd(20)} ${fmt(m.rps).padStart(6)} req/s  CPU ${fmt(m.cpuUsPerRequest, 1)} µs/req` +
            `, bare Express just before ${fmt(pair.express.cpuUsPerRequest, 1)}` +
            `  others ${fmt(m.otherCores, 2)} cores${m.failures + pair.express.failures ? `  FAILURES ${m.failures + pair.express.failures}` : ''}`,
        );
      }
      rounds.push(round);
    }
    const rows = summarise(rounds);
    const machine = machineSummary(
      rounds.map((round) => ({
        pipeline: Object.fromEntries(
          Object.entries(round).flatMap(([name, pair]) => [
            [name, pair.piece],
            [`express before ${name}`, pair.express],
          ]),
        ),
      })),
    );
    const cost = (name: string) => rows.find((row) => row.piece === name)?.cpuUsOverExpress ?? NaN;
    const sumOfPieces = inFull.reduce((sum, name) => sum + cost(name), 0);
    const failures = rows.reduce((n, row) => n + row.failures, 0);
    log('');
    log(
      `Medians of ${options.rounds} round(s), ${duration} s each, ${options.connections} connections:`,
    );
    for (const line of pipelineTable(rows)) log(line);
    log('');
    log(
      `the full pipeline costs ${fmt(cost('full'), 1)} µs/req over bare Express; its pieces measured alone add up to ${fmt(sumOfPieces, 1)} (${inFull.join(' + ')})`,
    );
    log(machineLine(machine, os.availableParallelism()));
    if (failures > 0) log(`WARNING: ${failures} requests failed`);
    const report = {
      date: new Date().toISOString(),
      source: describeSource(),
      box: describeMachine(),
      options: {
        duration,
        warmup,
        rounds: options.rounds,
        connections: options.connections,
        smoke: options.smoke,
        server: 'node --import tsx bench/pipeline-server.ts, NODE_ENV=production',
      },
      loadAverageAtStart,
      loadAverageAtEnd: os.loadavg(),
      machine,
      table: rows,
      fullCpuUsOverExpress: cost('full'),
      sumOfPiecesCpuUsOverExpress: sumOfPieces,
      rounds,
      seconds: Math.round((Date.now() - startedAt) / 1000),
    };
    const file = await saveResults(resultsDir, report, { ...options, kind: 'pipeline' });
    log(`saved ${path.relative(repoRoot, file)} (${report.seconds} s in all)`);
    if (failures > 0 && options.smoke) process.exitCode = 1;
  } finally {
    for (const server of servers.values()) await server.stop();
  }
}
