import { fileURLToPath } from 'node:url';
import { log, run } from './shell.ts';
import { STAND_INS } from './stand-ins.ts';

/**
 * The backend images the container suites run, built with the project's unchanged Dockerfile on the
 * node stand-in. Two releases (A and B differ in APP_VERSION, which the health answers report) and a
 * broken one for the failed-deploy drill. Kept between runs as the build cache.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));

export interface BackendImages {
  /** Release A: what the stacks start with. */
  a: string;
  /** Release B: what a redeploy moves to. */
  b: string;
  /** A release whose server exits at start: it migrates fine but never becomes healthy. */
  broken: string;
}

export const BACKEND_IMAGES: BackendImages = {
  a: 'tasks-backend:e2e-a',
  b: 'tasks-backend:e2e-b',
  broken: 'tasks-backend:e2e-broken',
};

/** The APP_VERSION each image reports. */
export const VERSIONS = { a: 'e2e-a', b: 'e2e-b', broken: 'e2e-broken' } as const;

/** Image id of a tag, or undefined. */
export async function imageId(tag: string): Promise<string | undefined> {
  const result = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], {
    allowFailure: true,
  });
  return result.code === 0 ? result.stdout.trim() : undefined;
}

async function build(args: string[], tag: string, context: string, input?: string) {
  const previous = await imageId(tag);
  // --network host: the build's `npm ci` reaches the registry the way this machine does.
  await run('docker', ['build', '--network', 'host', '--tag', tag, ...args, context], {
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    timeoutMs: 900_000,
    ...(input === undefined ? {} : { input }),
  });
  // The classic builder leaves each replaced image behind untagged: drop it, so a long-lived CI
  // machine keeps one set, not one per commit.
  if (previous && previous !== (await imageId(tag))) {
    await run('docker', ['rmi', previous], { allowFailure: true });
  }
}

// A release that passes its migrations (they run with an explicit command) but whose server exits
// at once, as a bad build or a missing setting would make it.
const BROKEN_DOCKERFILE = `ARG BASE
FROM \${BASE}
ENV APP_VERSION=${VERSIONS.broken}
CMD ["node", "-e", "console.error('this release cannot start'); process.exit(1)"]
`;

/** Builds A, B and the broken release; unchanged stages come from the cache. */
export async function buildBackendImages(): Promise<BackendImages> {
  const base = ['--build-arg', `NODE_IMAGE=${STAND_INS.node}`];
  log(`building ${BACKEND_IMAGES.a} and ${BACKEND_IMAGES.b} from the Dockerfile`);
  // The stages are tagged too, so their previous versions can be dropped when they change.
  await build([...base, '--target', 'build'], 'tasks-backend:e2e-stage-build', repo);
  await build([...base, '--target', 'prod-deps'], 'tasks-backend:e2e-stage-prod-deps', repo);
  await build([...base, '--build-arg', `APP_VERSION=${VERSIONS.a}`], BACKEND_IMAGES.a, repo);
  await build([...base, '--build-arg', `APP_VERSION=${VERSIONS.b}`], BACKEND_IMAGES.b, repo);
  await build(
    ['--build-arg', `BASE=${BACKEND_IMAGES.b}`],
    BACKEND_IMAGES.broken,
    '-',
    BROKEN_DOCKERFILE,
  );
  return BACKEND_IMAGES;
}
