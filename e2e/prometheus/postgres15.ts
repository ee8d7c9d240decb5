import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../backend/test/support/ports.ts';
import { postgres15Bin, run } from './processes.ts';

/**
 * A PostgreSQL 15 of the test's own, from Debian's packages, for the backup script: the script runs
 * pg_dump, which refuses a server newer than itself, and Debian ships client 15 only (the
 * embedded database is 16). As root, the server runs as the OS user `postgres`.
 */

export interface Postgres15 {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** A file holding the password, as PGPASSWORD_FILE and DATA_SOURCE_PASS_FILE want it. */
  readonly passwordFile: string;
  /** psql against the database, as that user; throws on failure. */
  psql(sql: string): string;
  stop(): void;
}

const asPostgres = (command: string, args: readonly string[]): [string, string[]] =>
  process.getuid?.() === 0
    ? ['runuser', ['-u', 'postgres', '--', command, ...args]]
    : [command, [...args]];

export async function startPostgres15(dir: string): Promise<Postgres15> {
  const port = await freePort();
  const user = 'tasks';
  const database = 'tasks';
  const password = 'backup-e2e-password';
  const data = join(dir, 'pg15');
  const socket = join(dir, 'pg15-socket');
  const passwordFile = join(dir, 'pg15-password');
  mkdirSync(socket);
  writeFileSync(passwordFile, password);
  // The server's user reads the password file at initdb and owns the data and socket directories.
  chmodSync(dir, 0o755);
  chmodSync(passwordFile, 0o644);
  if (process.getuid?.() === 0) run('chown', ['postgres', socket]);

  const step = (what: string, command: string, args: readonly string[]) => {
    const [bin, argv] = asPostgres(command, args);
    const result = run(bin, argv);
    if (result.code !== 0) throw new Error(`${what} failed (${result.code}): ${result.output}`);
    return result.output;
  };
  if (process.getuid?.() === 0) {
    mkdirSync(data);
    run('chown', ['postgres', data]);
  }
  step('initdb', `${postgres15Bin}/initdb`, [
    '-D',
    data,
    '-U',
    user,
    `--pwfile=${passwordFile}`,
    '--auth=scram-sha-256',
    '--no-sync',
  ]);
  step('pg_ctl start', `${postgres15Bin}/pg_ctl`, [
    '-D',
    data,
    '-l',
    join(data, 'server.log'),
    '-o',
    `-p ${port} -k ${socket} -c listen_addresses=127.0.0.1 -c fsync=off`,
    '-w',
    'start',
  ]);
  const env = { ...process.env, PGPASSWORD: password };
  const psql = (sql: string, db = database) => {
    const result = run(
      `${postgres15Bin}/psql`,
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        user,
        '-d',
        db,
        '-At',
        '-c',
        sql,
      ],
      { env },
    );
    if (result.code !== 0) throw new Error(`psql ${sql}: ${result.output}`);
    return result.output;
  };
  psql(`CREATE DATABASE ${database}`, 'postgres');
  return {
    host: '127.0.0.1',
    port,
    user,
    database,
    passwordFile,
    psql: (sql) => psql(sql),
    stop() {
      step('pg_ctl stop', `${postgres15Bin}/pg_ctl`, ['-D', data, '-m', 'fast', '-w', 'stop']);
    },
  };
}
