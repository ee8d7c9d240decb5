import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../../backend/test/support/wait.ts';
import { log, run, which } from './shell.ts';

/** Debian packages that provide what the container test needs, by the executable it looks for. */
const PACKAGES = {
  dockerd: 'docker.io',
  docker: 'docker.io',
  debootstrap: 'debootstrap',
  shellcheck: 'shellcheck',
} as const;

/** Installs the docker engine, Compose, debootstrap and shellcheck with apt-get where missing. */
export async function ensureTools(): Promise<void> {
  const missing = new Set<string>();
  for (const [executable, pkg] of Object.entries(PACKAGES)) {
    if (!(await which(executable))) missing.add(pkg);
  }
  if (!(await which('docker-compose')) && !(await hasComposeV2())) missing.add('docker-compose');
  if (missing.size === 0) return;
  const packages = [...missing];
  log(`installing ${packages.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env, timeoutMs: 300_000 });
  await run('apt-get', ['install', '-y', '-qq', ...packages], {
    env,
    timeoutMs: 600_000,
  });
}

async function hasComposeV2(): Promise<boolean> {
  if (!(await which('docker'))) return false;
  return (await run('docker', ['compose', 'version'], { allowFailure: true })).code === 0;
}

/** `docker compose` (v2) where it exists, else `docker-compose` (v1); the file works with both. */
export async function composeCommand(): Promise<[string, ...string[]]> {
  return (await hasComposeV2()) ? ['docker', 'compose'] : ['docker-compose'];
}

export interface DockerDaemon {
  /** The PID of the dockerd this run started, or undefined when one was already running. */
  readonly startedPid: number | undefined;
  /** Stops the daemon if this run started it (by its PID); otherwise does nothing. */
  stop(): Promise<void>;
}

async function daemonAnswers(): Promise<boolean> {
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], {
    allowFailure: true,
    timeoutMs: 10_000,
  });
  return info.code === 0;
}

/** Uses the running docker daemon or starts one (there is no systemd on the CI machines). */
export async function ensureDaemon(workDir: string): Promise<DockerDaemon> {
  if (await daemonAnswers()) {
    log('using the docker daemon that is already running');
    return { startedPid: undefined, stop: () => Promise.resolve() };
  }
  const logFile = await open(join(workDir, 'dockerd.log'), 'a');
  const dockerd: ChildProcess = spawn('dockerd', [], { stdio: ['ignore', logFile.fd, logFile.fd] });
  const exited = new Promise<void>((resolve) => dockerd.once('exit', () => resolve()));
  dockerd.once('error', () => undefined);
  const pid = dockerd.pid;
  if (pid === undefined) throw new Error('dockerd did not start');
  log(`started dockerd (pid ${pid}, log ${join(workDir, 'dockerd.log')})`);
  await waitFor('dockerd to answer', async () => ((await daemonAnswers()) ? true : undefined), {
    timeoutMs: 60_000,
  });
  return {
    startedPid: pid,
    async stop() {
      if (dockerd.exitCode === null && dockerd.signalCode === null) {
        process.kill(pid, 'SIGTERM');
        const stopped = await Promise.race([
          exited.then(() => true),
          new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000).unref()),
        ]);
        if (!stopped) {
          process.kill(pid, 'SIGKILL');
          await exited;
        }
        log(`stopped dockerd (pid ${pid})`);
      }
      await logFile.close();
    },
  };
}
