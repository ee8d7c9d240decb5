import { connect } from 'node:net';
import { GiveUp, waitFor } from '../../backend/test/support/wait.ts';
import { output, run, type RunOptions } from './shell.ts';

/** `docker inspect` of one object, parsed. */
export async function inspect<T>(id: string, format = '{{json .}}'): Promise<T> {
  return JSON.parse(await output('docker', ['inspect', '--format', format, id])) as T;
}

/** Waits for a container's health check to report healthy; gives up at once if it stops. */
export async function waitHealthy(container: string, timeoutMs = 180_000): Promise<void> {
  await waitFor(
    `${container} to become healthy`,
    async () => {
      const state = await inspect<{ Status: string; Health?: { Status: string } }>(
        container,
        '{{json .State}}',
      );
      if (state.Status === 'exited' || state.Status === 'dead') {
        const logs = await run('docker', ['logs', '--tail', '30', container], {
          allowFailure: true,
        });
        throw new GiveUp(`${container} stopped:\n${logs.stdout}${logs.stderr}`);
      }
      if (!state.Health) throw new GiveUp(`${container} has no health check`);
      return state.Health.Status === 'healthy' ? true : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** 'connected', or the error code of a TCP connection attempt (ECONNREFUSED, ETIMEDOUT, ...). */
export function tcpProbe(host: string, port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/**
 * Compose, v1 or v2, always with the test's own project name, files and generated .env, and with a
 * clean environment: variables of the CI shell must not leak into the file's interpolation.
 */
export class ComposeProject {
  constructor(
    readonly command: readonly [string, ...string[]],
    readonly name: string,
    readonly files: readonly string[],
    readonly envFile: string,
  ) {}

  /**
   * The environment that makes plain `docker compose` (and vps/deploy.sh) act on this project:
   * Compose reads COMPOSE_PROJECT_NAME and COMPOSE_FILE itself; ENV_FILE is the deploy script's.
   */
  environment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'] };
    for (const key of ['DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY']) {
      if (process.env[key]) env[key] = process.env[key];
    }
    return {
      ...env,
      COMPOSE_PROJECT_NAME: this.name,
      COMPOSE_FILE: this.files.join(':'),
      ENV_FILE: this.envFile,
      ...extra,
    };
  }

  run(args: string[], options: RunOptions = {}) {
    const [executable, ...prefix] = this.command;
    return run(executable, [...prefix, '--env-file', this.envFile, ...args], {
      timeoutMs: 300_000,
      ...options,
      env: this.environment(options.env),
    });
  }

  /** The id of the service's container (compose v1 and v2 print it the same way). */
  async containerId(service: string): Promise<string> {
    const id = (await this.run(['ps', '-q', service])).stdout.trim();
    if (!id) throw new Error(`compose service ${service} has no container`);
    return id;
  }
}
