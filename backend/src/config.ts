import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * The only reader of process.env. Every setting the backend understands is declared here once,
 * with its default; `.env.example`, docker-compose.yml and the Kubernetes ConfigMap are checked
 * against these keys by tests, so a setting cannot be added in one place and forgotten in another.
 */

/** One entry of Express's `trust proxy` list: a named range, an address, or a CIDR. */
function isProxyAddress(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
// 0 asks the OS for a free port (tests).
const port = int(0, 65535);
const databaseUrl = z.url({
  protocol: /^postgres(ql)?$/,
  error: 'must be a postgres:// or postgresql:// URL',
});

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: port.default(3000),
  METRICS_PORT: port.default(9464),
  METRICS_ENABLED: bool.default(true),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TRUST_PROXY: z
    .string()
    .refine(
      (v) => /^(true|false|\d+)$/.test(v) || v.split(',').every((e) => isProxyAddress(e.trim())),
      'must be true, false, a hop count, or a comma-separated list of addresses, CIDRs, loopback, linklocal or uniquelocal',
    )
    .default('false'),

  DATABASE_URL: databaseUrl.optional(),
  // The `_FILE` convention of the official images: the secret comes from a mounted file
  // (a Kubernetes Secret volume, a Compose secret), never from the environment.
  DATABASE_URL_FILE: z.string().min(1).optional(),
  DATABASE_POOL_MAX: int(1, 1000).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 60_000).default(2000),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(5000),
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  MIGRATE_ON_START: bool.default(true),
  EMBEDDED_PG_DATA_DIR: z.string().min(1).default('.data/postgres'),
  EMBEDDED_PG_PORT: port.default(54329),

  SHUTDOWN_DELAY_MS: int(0, 120_000).optional(),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),

  AUTH_TOKEN_TTL_SECONDS: int(60, 365 * 24 * 3600).default(30 * 24 * 3600),
  AUTH_RATE_LIMIT_PER_MINUTE: int(1, 100_000).default(10),
  AUTH_RATE_LIMIT_IPV6_PREFIX: int(16, 128).default(64),
  AUTH_SESSION_MAX_LIFETIME_SECONDS: int(60, 10 * 365 * 24 * 3600).default(365 * 24 * 3600),

  SYNC_TOMBSTONE_RETENTION_SECONDS: int(60, 10 * 365 * 24 * 3600).default(30 * 24 * 3600),

  ENABLE_TEST_ROUTES: bool.default(false),
  /** Set by the image build (`--build-arg APP_VERSION=…`); defaults to package.json's version. */
  APP_VERSION: z
    .string()
    .regex(/^[\w.+-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes, pluses or underscores')
    .optional(),
});

export type Env = z.infer<typeof envSchema>;

/** Every environment variable the backend reads. */
export const configKeys = Object.keys(envSchema.shape) as (keyof Env)[];

export interface Config {
  readonly env: Env['NODE_ENV'];
  readonly host: string;
  readonly port: number;
  readonly metricsPort: number;
  readonly metricsEnabled: boolean;
  readonly logLevel: Env['LOG_LEVEL'];
  readonly trustProxy: boolean | number | string;
  readonly database: {
    /** Undefined means: start the embedded PostgreSQL (development only). */
    readonly url: string | undefined;
    readonly poolMax: number;
    readonly connectTimeoutMs: number;
    readonly statementTimeoutMs: number;
    readonly preparedStatements: boolean;
    readonly migrateOnStart: boolean;
    readonly embeddedDataDir: string;
    readonly embeddedPort: number;
  };
  readonly shutdown: { readonly delayMs: number; readonly timeoutMs: number };
  readonly auth: {
    /** A token's lifetime from its creation or last extension (sessions slide). */
    readonly tokenTtlSeconds: number;
    /** No extension takes a session past this age. */
    readonly sessionMaxLifetimeSeconds: number;
    readonly rateLimitPerMinute: number;
    readonly ipv6PrefixBits: number;
  };
  readonly sync: {
    /** How long a deleted task's tombstone is kept for syncing clients. */
    readonly tombstoneRetentionSeconds: number;
  };
  readonly enableTestRoutes: boolean;
  /** What this build calls itself: health answers and app_info carry it. */
  readonly version: string | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true') return true;
  if (value === 'false' || value === '') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value; // a comma-separated list of addresses/subnets, as Express accepts
}

/** Reads and validates the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset", as in a .env file with `KEY=`.
  const raw = Object.fromEntries(
    configKeys.map((key) => [key, source[key] === '' ? undefined : source[key]]),
  );
  const parsed = envSchema.safeParse(raw);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
  // Checked outside the schema so they are reported together with every other problem.
  const url = resolveDatabaseUrl(raw['DATABASE_URL'], raw['DATABASE_URL_FILE'], problems);
  if (raw['NODE_ENV'] === 'production' && url === undefined && !raw['DATABASE_URL_FILE']) {
    problems.push(
      'DATABASE_URL (or DATABASE_URL_FILE) is required when NODE_ENV=production (the embedded database is for development only)',
    );
  }
  if (
    parsed.success &&
    parsed.data.AUTH_SESSION_MAX_LIFETIME_SECONDS < parsed.data.AUTH_TOKEN_TTL_SECONDS
  ) {
    problems.push(
      'AUTH_SESSION_MAX_LIFETIME_SECONDS must be at least AUTH_TOKEN_TTL_SECONDS (a session cannot be capped below its own lifetime)',
    );
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const env = parsed.data;
  const config: Config = {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    metricsPort: env.METRICS_PORT,
    metricsEnabled: env.METRICS_ENABLED,
    logLevel: env.LOG_LEVEL,
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    database: {
      url,
      poolMax: env.DATABASE_POOL_MAX,
      connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
      preparedStatements: env.DATABASE_PREPARED_STATEMENTS,
      migrateOnStart: env.MIGRATE_ON_START,
      embeddedDataDir: env.EMBEDDED_PG_DATA_DIR,
      embeddedPort: env.EMBEDDED_PG_PORT,
    },
    shutdown: {
      // In production a load balancer needs time to stop routing before we stop accepting.
      delayMs: env.SHUTDOWN_DELAY_MS ?? (env.NODE_ENV === 'production' ? 5000 : 0),
      timeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    },
    auth: {
      tokenTtlSeconds: env.AUTH_TOKEN_TTL_SECONDS,
      sessionMaxLifetimeSeconds: env.AUTH_SESSION_MAX_LIFETIME_SECONDS,
      rateLimitPerMinute: env.AUTH_RATE_LIMIT_PER_MINUTE,
      ipv6PrefixBits: env.AUTH_RATE_LIMIT_IPV6_PREFIX,
    },
    sync: { tombstoneRetentionSeconds: env.SYNC_TOMBSTONE_RETENTION_SECONDS },
    enableTestRoutes: env.ENABLE_TEST_ROUTES,
    version: env.APP_VERSION,
  };
  return deepFreeze(config);
}

/**
 * DATABASE_URL, or the contents of DATABASE_URL_FILE (one of them, not both). The file's problems
 * are named without its contents, which are a secret.
 */
function resolveDatabaseUrl(
  value: string | undefined,
  file: string | undefined,
  problems: string[],
): string | undefined {
  if (file === undefined) return value;
  if (value !== undefined) {
    problems.push('DATABASE_URL and DATABASE_URL_FILE are both set: use one');
    return undefined;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'unreadable';
    problems.push(`DATABASE_URL_FILE ${file} cannot be read (${code})`);
    return undefined;
  }
  if (!databaseUrl.safeParse(text).success) {
    problems.push(`DATABASE_URL_FILE ${file} does not hold a postgres:// or postgresql:// URL`);
    return undefined;
  }
  return text;
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object') deepFreeze(child as object);
  }
  return Object.freeze(value);
}
