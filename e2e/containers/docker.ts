import { connect, createServer } from 'node:net';
import { GiveUp, output, run, waitFor, type RunOptions } from './shell.ts';

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

/** A port nobody listens on right now on 127.0.0.1 (never the fixed 3000/9464). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
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
 * Compose, v1 or v2, always with the test's own project name and generated .env, and with a clean
 * environment: variables of the CI shell must not leak into the file's interpolation.
 */
export class ComposeProject {
  constructor(
    private readonly command: readonly [string, ...string[]],
    readonly name: string,
    private readonly file: string,
    private readonly envFile: string,
  ) {}

  run(args: string[], options: RunOptions = {}) {
    const [executable, ...prefix] = this.command;
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'] };
    for (const key of ['DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY']) {
      if (process.env[key]) env[key] = process.env[key];
    }
    const global = ['-p', this.name, '-f', this.file, '--env-file', this.envFile];
    return run(executable, [...prefix, ...global, ...args], {
      timeoutMs: 300_000,
      ...options,
      env,
    });
  }

  /** The id of the service's container (compose v1 and v2 print it the same way). */
  async containerId(service: string): Promise<string> {
    const id = (await this.run(['ps', '-q', service])).stdout.trim();
    if (!id) throw new Error(`compose service ${service} has no container`);
    return id;
  }
}
