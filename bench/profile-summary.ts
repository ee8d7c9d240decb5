import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time by package and the hottest
 * functions, which is what tells "ours" (backend/…) from Express, pino, pg or Node itself.
 * Usage: tsx bench/profile-summary.ts <file.cpuprofile>
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds on the monotonic clock (the one process.hrtime reads, on Linux). */
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds from the previous sample (the first: from startTime). */
  timeDeltas?: number[];
}

/** A stretch of time on the monotonic clock, in microseconds: process.hrtime.bigint() / 1000n. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time minus (idle): CPU time spent on the main thread. */
  busyMs: number;
  byPackage: { name: string; ms: number; share: number }[];
  topFunctions: { name: string; where: string; ms: number; share: number }[];
}

/** Where a frame's code lives: an npm package, the backend, Node's internals, or V8's pseudo-frames. */
function owner(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node: internals';
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) return match[1]!;
  if (url.includes('/backend/')) return 'backend (ours)';
  return path.basename(url);
}

/**
 * Self time by package and function; with `window`, only of the samples taken in it (the
 * measurement, without start-up and warm-up).
 */
export function summariseProfile(
  profile: CpuProfile,
  top = 25,
  window?: ProfileWindow,
): ProfileSummary {
  let samples = profile.samples;
  let totalMs = (profile.endTime - profile.startTime) / 1000;
  const sampleMs = totalMs / Math.max(1, profile.samples.length);
  if (window) {
    if (!profile.timeDeltas) throw new Error('the profile has no timeDeltas: cannot window it');
    let at = profile.startTime;
    const deltas = profile.timeDeltas;
    samples = profile.samples.filter((_, i) => {
      at += deltas[i] ?? 0;
      return at >= window.fromUs && at <= window.toUs;
    });
    totalMs = samples.length * sampleMs;
  }
  const hits = new Map<number, number>();
  for (const id of samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const packages = new Map<string, number>();
  const functions = new Map<string, { name: string; where: string; ms: number }>();
  for (const node of profile.nodes) {
    const count = hits.get(node.id) ?? 0;
    if (count === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const ms = count * sampleMs;
    const pkg = owner(url, functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + ms);
    const where = url
      ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/backend\//, 'backend/')}:${lineNumber + 1}`
      : '';
    const key = `${functionName}@${where}`;
    const entry = functions.get(key) ?? { name: functionName || '(anonymous)', where, ms: 0 };
    entry.ms += ms;
    functions.set(key, entry);
  }
  const busyMs = totalMs - (packages.get('(idle)') ?? 0);
  packages.delete('(idle)');
  for (const [key, f] of functions) if (f.name === '(idle)') functions.delete(key);
  const share = (ms: number) => Math.round((ms / busyMs) * 1000) / 10;
  return {
    totalMs,
    busyMs,
    byPackage: [...packages]
      .map(([name, ms]) => ({ name, ms, share: share(ms) }))
      .sort((a, b) => b.ms - a.ms),
    topFunctions: [...functions.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ ...f, share: share(f.ms) })),
  };
}

/** Shares of busy (non-idle) time, and CPU microseconds per request when `requests` is given. */
export function formatSummary(summary: ProfileSummary, requests?: number): string {
  const perRequest = (ms: number) =>
    requests ? `  ${((ms * 1000) / requests).toFixed(1).padStart(6)} µs/req` : '';
  const lines = [
    `CPU profile: ${(summary.totalMs / 1000).toFixed(1)} s sampled, ${(summary.busyMs / 1000).toFixed(1)} s busy` +
      (requests ? ` (${requests} requests:${perRequest(summary.busyMs)})` : ''),
    '',
    'self time by package (share of busy time):',
  ];
  for (const p of summary.byPackage.slice(0, 20)) {
    lines.push(`  ${p.share.toFixed(1).padStart(5)} %${perRequest(p.ms)}  ${p.name}`);
  }
  lines.push('', 'hottest functions (self time):');
  for (const f of summary.topFunctions) {
    lines.push(`  ${f.share.toFixed(1).padStart(5)} %${perRequest(f.ms)}  ${f.name}  ${f.where}`);
  }
  return lines.join('\n');
}

export async function summariseProfileFile(
  file: string,
  window?: ProfileWindow,
): Promise<ProfileSummary> {
  return summariseProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, 25, window);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: tsx bench/profile-summary.ts <file.cpuprofile>');
    process.exit(2);
  }
  console.log(formatSummary(await summariseProfileFile(file)));
}
