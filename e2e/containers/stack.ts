import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../backend/test/support/ports.ts';
import { composeCommand } from './docker-host.ts';
import { ComposeProject, waitHealthy } from './docker.ts';
import { EdgeClient } from './edge-client.ts';
import { log, output, run, type RunResult } from './shell.ts';
import { standInOverride } from './stand-ins.ts';

/**
 * One compose stack per test file, set up as the README tells an operator to: `.env` from
 * `.env.example` with the values a user fills in (here: loopback ports, the internal CA, the image
 * under test), secrets from `vps/init-secrets.sh`, the backup directory owned by uid 999. The only
 * additions are the stand-in override file and directories of its own instead of the repository's.
 */

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const SERVICES = ['db', 'backend-a', 'backend-b', 'caddy', 'backup'] as const;
export const REPLICAS = ['backend-a', 'backend-b'] as const;
/** The label on containers a test starts outside compose, so cleanup finds them. */
export const RUN_LABEL = 'tasks-backend.e2e.run';

export class Stack {
  private client: EdgeClient | undefined;

  private constructor(
    readonly compose: ComposeProject,
    readonly workDir: string,
    readonly domain: string,
    readonly httpPort: number,
    readonly httpsPort: number,
    readonly metricsPorts: readonly [number, number],
  ) {}

  get envFile(): string {
    return this.compose.envFile;
  }
  get backupDir(): string {
    return join(this.workDir, 'backups');
  }
  get ownLabel(): string {
    return `${RUN_LABEL}=${this.compose.name}`;
  }

  /** A new stack (not started): its .env, secrets, backup directory and override file. */
  static async create(purpose: string, backendImage: string): Promise<Stack> {
    const name = `tasks-e2e-${purpose}-${randomBytes(3).toString('hex')}`;
    const workDir = await mkdtemp(join(tmpdir(), `${name}-`));
    const domain = `api.${purpose}.tasks.test`;
    const [httpPort, httpsPort, metricsA, metricsB] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const envFile = join(workDir, '.env');
    await writeEnvFile(envFile, {
      DOMAIN: domain,
      TLS_MODE: 'internal',
      HTTP_PUBLISH: `127.0.0.1:${httpPort}`,
      HTTPS_PUBLISH: `127.0.0.1:${httpsPort}`,
      METRICS_HOST_PORT: String(metricsA),
      METRICS_HOST_PORT_B: String(metricsB),
      BACKEND_IMAGE: backendImage,
      SECRETS_DIR: join(workDir, 'secrets'),
      BACKUP_DIR: join(workDir, 'backups'),
    });
    // As the README says: secrets from the script, the backup directory for uid 999.
    await run('sh', [join(repo, 'vps/init-secrets.sh'), envFile]);
    await run('install', ['-d', '-m', '0700', '-o', '999', '-g', '999', join(workDir, 'backups')]);
    const override = join(workDir, 'stand-ins.yml');
    await writeFile(override, standInOverride());
    const compose = new ComposeProject(
      await composeCommand(),
      name,
      [join(repo, 'docker-compose.yml'), override],
      envFile,
    );
    return new Stack(compose, workDir, domain, httpPort, httpsPort, [metricsA, metricsB]);
  }

  /** The same project with other compose files (the major-upgrade drill's override). */
  withFiles(files: string[]): ComposeProject {
    return new ComposeProject(this.compose.command, this.compose.name, files, this.envFile);
  }

  /** `up -d` and waits until every service with a health check is healthy. */
  async up(services: readonly string[] = []): Promise<void> {
    log(`${this.compose.name}: up -d ${services.join(' ')}`);
    await this.compose.run(['up', '-d', '--no-build', ...services]);
    await this.healthy(services.length ? services : SERVICES);
  }

  async healthy(services: readonly string[] = SERVICES, compose = this.compose): Promise<void> {
    for (const service of services) {
      if (service === 'backup') continue; // a scheduler, not a server: no health check
      await waitHealthy(await compose.containerId(service));
    }
  }

  /** The HTTPS client, trusting this stack's Caddy root (fetched anew after `down -v`). */
  async edge(): Promise<EdgeClient> {
    if (!this.client) {
      const ca = await output('docker', [
        'exec',
        await this.compose.containerId('caddy'),
        'cat',
        '/data/caddy/pki/authorities/local/root.crt',
      ]);
      this.client = new EdgeClient(this.domain, this.httpsPort, ca);
    }
    return this.client;
  }

  /** Forgets the client, e.g. after `down -v` removed Caddy's CA. */
  resetEdge(): void {
    this.client?.close();
    this.client = undefined;
  }

  /** `docker compose run --rm backup ARGS…`, as the README shows it. */
  backupCommand(args: string[], extra: string[] = []): Promise<RunResult> {
    return this.compose.run(['run', '--rm', '-T', ...extra, 'backup', ...args], {
      allowFailure: true,
    });
  }

  /** One setting of the .env file, changed as an operator would edit it. */
  async setEnv(key: string, value: string): Promise<void> {
    const text = await readFile(this.envFile, 'utf8');
    const line = new RegExp(`^${key}=.*$`, 'm');
    if (!line.test(text)) throw new Error(`${key} is not in ${this.envFile}`);
    await writeFile(this.envFile, text.replace(line, `${key}=${value}`));
  }

  async env(key: string): Promise<string | undefined> {
    const text = await readFile(this.envFile, 'utf8');
    return new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1];
  }

  /** psql in the db container, as its superuser, unaligned and quiet. */
  async sql(query: string, compose = this.compose): Promise<string> {
    const result = await compose.run(
      [
        'exec',
        '-T',
        'db',
        'psql',
        '-X',
        '-q',
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-U',
        'tasks',
        'tasks',
      ],
      { input: query },
    );
    return result.stdout;
  }

  /** Removes everything this stack created; safe to call twice and after any failure. */
  async remove(): Promise<void> {
    this.resetEdge();
    await this.compose.run(['down', '--volumes', '--remove-orphans', '--timeout', '20'], {
      allowFailure: true,
    });
    const composeLabel = `label=com.docker.compose.project=${this.compose.name}`;
    for (const label of [composeLabel, `label=${this.ownLabel}`]) {
      const containers = await output('docker', ['ps', '-aq', '--filter', label]);
      if (containers) {
        await run('docker', ['rm', '-fv', ...containers.split('\n')], { allowFailure: true });
      }
      const networks = await output('docker', ['network', 'ls', '-q', '--filter', label]);
      if (networks) {
        await run('docker', ['network', 'rm', ...networks.split('\n')], { allowFailure: true });
      }
      const volumes = await output('docker', ['volume', 'ls', '-q', '--filter', label]);
      if (volumes) {
        await run('docker', ['volume', 'rm', ...volumes.split('\n')], { allowFailure: true });
      }
    }
    await rm(this.workDir, { recursive: true, force: true });
  }

  /** What is left of this stack on the engine: containers, networks, volumes. */
  async leftovers(): Promise<string[]> {
    const found: string[] = [];
    for (const label of [
      `label=com.docker.compose.project=${this.compose.name}`,
      `label=${this.ownLabel}`,
    ]) {
      for (const kind of [
        ['ps', '-aq'],
        ['network', 'ls', '-q'],
        ['volume', 'ls', '-q'],
      ]) {
        const ids = await output('docker', [...kind, '--filter', label]);
        if (ids) found.push(...ids.split('\n').map((id) => `${kind[0]} ${id}`));
      }
    }
    return found;
  }
}

/** .env.example as a user fills it in: the given keys replaced, everything else as shipped. */
async function writeEnvFile(file: string, values: Record<string, string>): Promise<void> {
  const template = await readFile(join(repo, '.env.example'), 'utf8');
  const missing = Object.keys(values).filter((key) => !new RegExp(`^${key}=`, 'm').test(template));
  if (missing.length) throw new Error(`.env.example has no ${missing.join(', ')}`);
  const filled = template.replace(/^([A-Z][A-Z0-9_]*)=(.*)$/gm, (line, key: string) =>
    key in values ? `${key}=${values[key]}` : line,
  );
  await writeFile(file, filled, { mode: 0o600 });
}

/** A compose project's named volumes' names (`<project>_pgdata`, …). */
export async function volumesOf(project: string): Promise<string[]> {
  const text = await output('docker', [
    'volume',
    'ls',
    '--format',
    '{{.Name}}',
    '--filter',
    `label=com.docker.compose.project=${project}`,
  ]);
  return text ? text.split('\n').sort() : [];
}
