import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { apiRoutes } from '../src/app.ts';
import { configKeys } from '../src/config.ts';
import { defaultBodyLimit } from '../src/http/routes.ts';

/**
 * `.env.example`, config.ts and docker-compose.yml (with its optional overlays such as
 * docker-compose.monitoring.yml, which read the same .env) describe the same settings several times;
 * these tests keep them in step, so a setting cannot be added in one place and forgotten in another.
 */

const root = new URL('../../', import.meta.url);
const envExample = readFileSync(new URL('.env.example', root), 'utf8');
const composeFiles = readdirSync(root)
  .filter((file) => /^docker-compose(\.[\w-]+)?\.ya?ml$/.test(file))
  .sort();
const composeTexts = new Map(
  composeFiles.map((file) => [file, readFileSync(new URL(file, root), 'utf8')] as const),
);

/** Keys only docker-compose.yml reads (db, caddy, backup, ports, images), never the backend. */
const COMPOSE_ONLY: Record<string, string> = {
  POSTGRES_USER: 'db role (and backup PGUSER); vps/init-secrets.sh writes it into database_url',
  POSTGRES_DB: 'db name (and backup PGDATABASE); vps/init-secrets.sh writes it into database_url',
  SECRETS_DIR: 'where the postgres_password and database_url secret files are',
  DOMAIN: "caddy: the API's host name",
  TLS_MODE: 'caddy: acme or internal certificates',
  ACME_EMAIL: 'caddy: ACME account contact',
  HTTP_PUBLISH: 'caddy: host port (or address:port) for HTTP',
  HTTPS_PUBLISH: 'caddy: host port (or address:port) for HTTPS and HTTP/3',
  METRICS_HOST_PORT: 'host port of backend-a metrics (on 127.0.0.1)',
  METRICS_HOST_PORT_B: 'host port of backend-b metrics (on 127.0.0.1)',
  BACKEND_IMAGE: 'the image both replicas run (vps/deploy.sh rewrites it)',
  BACKUP_DIR: 'backup: host directory of the dumps',
  BACKUP_KEEP: 'backup: dumps kept',
  BACKUP_INTERVAL: 'backup: time between dumps',
  PROMETHEUS_RETENTION: 'docker-compose.monitoring.yml: how long Prometheus keeps samples',
  PROMETHEUS_HOST_PORT: 'docker-compose.monitoring.yml: Prometheus UI port on 127.0.0.1',
  GRAFANA_ADMIN_PASSWORD: 'docker-compose.monitoring.yml: Grafana admin password',
  GRAFANA_HOST_PORT: 'docker-compose.monitoring.yml: Grafana UI port on 127.0.0.1',
};
/** Settings that only matter without DATABASE_URL, which compose always sets. */
const DEVELOPMENT_ONLY = ['EMBEDDED_PG_DATA_DIR', 'EMBEDDED_PG_PORT'];
/** Baked into the image by its build (`--build-arg APP_VERSION`), never set by compose. */
const IMAGE_PROVIDED = ['APP_VERSION'];
/** Alternatives: the backend service sets one of each group. */
const ONE_OF = [['DATABASE_URL', 'DATABASE_URL_FILE']];
/** Read by node itself, not by config.ts. */
const NODE_RUNTIME = ['NODE_OPTIONS'];
const SECRETS = ['GRAFANA_ADMIN_PASSWORD'];
/** The two backend replicas: one definition (a YAML anchor), so one environment. */
const REPLICAS = ['backend-a', 'backend-b'];

function envFile(text: string) {
  const active = new Map<string, string>();
  const commented = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (set) active.set(set[1]!, set[2]!);
    const documented = /^#\s*([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (documented) commented.set(documented[1]!, documented[2]!);
  }
  return { active, commented, all: new Set([...active.keys(), ...commented.keys()]) };
}

interface ComposeService {
  image?: string;
  environment?: Record<string, unknown> | string[];
  secrets?: string[];
  stop_grace_period?: string;
}

interface ComposeFile {
  services?: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
  [key: string]: unknown;
}

function serviceEnvironment(compose: ComposeFile, service: string): Map<string, string> {
  const environment = compose.services?.[service]?.environment ?? {};
  const entries = Array.isArray(environment)
    ? environment.map((item) => item.split(/=(.*)/s) as [string, string])
    : Object.entries(environment).map(([key, value]) => [key, String(value)] as const);
  return new Map(entries);
}

/** `${KEY}`, `${KEY:-default}`, `${KEY:?error}`, but not `$${KEY}` (an escaped, literal `$`). */
function interpolations(text: string) {
  const found = new Map<string, string | undefined>();
  for (const match of text.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g)) {
    const [, key, operator, operand] = match;
    const fallback = operator === ':-' || operator === '-' ? operand : undefined;
    if (!found.has(key!) || fallback !== undefined) found.set(key!, fallback);
  }
  return found;
}

function durationMs(value: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(value);
  if (!match) throw new Error(`unsupported duration ${value}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

const env = envFile(envExample);
const compose = parse(composeTexts.get('docker-compose.yml') ?? '', { merge: true }) as ComposeFile;
// What a backend replica gets, whichever overlays are added to the main file.
const backendEnvironment = new Map(
  [...composeTexts.values()].flatMap((text) => [
    ...serviceEnvironment(parse(text, { merge: true }) as ComposeFile, 'backend-a'),
  ]),
);
const interpolated = interpolations([...composeTexts.values()].join('\n'));
const config = new Set<string>(configKeys);

describe('.env.example, config.ts and docker-compose.yml', () => {
  it('when config.ts reads a setting, then .env.example documents it', () => {
    expect(configKeys.filter((key) => !env.all.has(key))).toEqual([]);
  });

  it('when .env.example names a key, then the backend reads it or it is a known compose-only key', () => {
    expect([...env.all].filter((key) => !config.has(key) && !(key in COMPOSE_ONLY))).toEqual([]);
    expect(Object.keys(COMPOSE_ONLY).filter((key) => config.has(key))).toEqual([]);
    expect(Object.keys(COMPOSE_ONLY).filter((key) => !env.active.has(key))).toEqual([]);
  });

  it('when the backend service sets a variable, then the backend (or node) reads it', () => {
    const unread = [...backendEnvironment.keys()].filter(
      (key) => !config.has(key) && !NODE_RUNTIME.includes(key),
    );
    expect(unread).toEqual([]);
  });

  it('when config.ts reads a setting, then the backend service sets it, unless it is development-only', () => {
    const alternatives = ONE_OF.flat();
    const missing = configKeys.filter(
      (key) =>
        !DEVELOPMENT_ONLY.includes(key) &&
        !IMAGE_PROVIDED.includes(key) &&
        !alternatives.includes(key) &&
        !backendEnvironment.has(key),
    );
    expect(missing).toEqual([]);
    for (const group of ONE_OF) {
      expect(
        group.filter((key) => backendEnvironment.has(key)),
        group.join(' or '),
      ).toHaveLength(1);
    }
    expect(
      IMAGE_PROVIDED.filter((key) => backendEnvironment.has(key) || env.active.has(key)),
    ).toEqual([]);
    expect(DEVELOPMENT_ONLY.filter((key) => backendEnvironment.has(key))).toEqual([]);
    expect(DEVELOPMENT_ONLY.filter((key) => env.active.has(key))).toEqual([]);
  });

  it('when .env.example sets a key, then docker-compose.yml uses it, and only those', () => {
    // A key set in .env that compose never interpolates would be silently ignored on the VPS.
    expect([...env.active.keys()].filter((key) => !interpolated.has(key))).toEqual([]);
    expect([...interpolated.keys()].filter((key) => !env.active.has(key))).toEqual([]);
  });

  it("when docker-compose.yml has a default, then it equals .env.example's value", () => {
    const differing = [...interpolated]
      .filter(([key, fallback]) => fallback !== undefined && env.active.get(key) !== fallback)
      .map(([key, fallback]) => `${key}: compose ${fallback}, .env.example ${env.active.get(key)}`);
    expect(differing).toEqual([]);
  });

  it('the two replicas share one definition: the same environment, image and secrets', () => {
    const [a, b] = REPLICAS.map((name) => compose.services?.[name]);
    expect(a).toBeDefined();
    expect({ ...serviceEnvironment(compose, 'backend-b') }).toEqual({
      ...serviceEnvironment(compose, 'backend-a'),
    });
    expect([...serviceEnvironment(compose, 'backend-b')]).toEqual([
      ...serviceEnvironment(compose, 'backend-a'),
    ]);
    expect(b?.image).toBe(a?.image);
    expect(b?.secrets).toEqual(a?.secrets);
  });

  it('no database secret is in .env: db, backends and backup read files mounted as secrets', () => {
    expect([...env.all].filter((key) => /PASSWORD/.test(key) && !SECRETS.includes(key))).toEqual(
      [],
    );
    const db = serviceEnvironment(compose, 'db');
    expect(db.get('POSTGRES_PASSWORD_FILE')).toBe('/run/secrets/postgres_password');
    expect(db.has('POSTGRES_PASSWORD')).toBe(false);
    expect(backendEnvironment.get('DATABASE_URL_FILE')).toBe('/run/secrets/database_url');
    const backup = serviceEnvironment(compose, 'backup');
    expect(backup.get('PGPASSWORD_FILE')).toBe('/run/secrets/postgres_password');
    expect(backup.has('PGPASSWORD')).toBe(false);
    expect(compose.services?.['db']?.secrets).toEqual(['postgres_password']);
    expect(compose.services?.['backup']?.secrets).toEqual(['postgres_password']);
    expect(compose.services?.['backend-a']?.secrets).toEqual(['database_url']);
    expect(Object.keys(compose.secrets ?? {}).sort()).toEqual([
      'database_url',
      'postgres_password',
    ]);
  });

  it('db and backup run the one pinned PostgreSQL image', () => {
    const pin = compose['x-postgres-image'];
    expect(pin).toMatch(/^postgres:\d+\.\d+-/);
    expect(compose.services?.['db']?.image).toBe(pin);
    expect(compose.services?.['backup']?.image).toBe(pin);
  });

  it("the backup script's defaults are .env.example's", () => {
    const script = readFileSync(new URL('backup/backup.sh', root), 'utf8');
    for (const key of ['BACKUP_KEEP', 'BACKUP_INTERVAL']) {
      const fallback = new RegExp(`^${key}=\\$\\{${key}:-([^}]*)\\}$`, 'm').exec(script)?.[1];
      expect(fallback, key).toBe(env.active.get(key));
    }
  });

  it('every setting the Caddyfile reads is in the caddy service environment', () => {
    const caddyfile = readFileSync(new URL('vps/Caddyfile', root), 'utf8');
    const read = [...new Set([...caddyfile.matchAll(/\{\$([A-Z_]+)\}/g)].map((m) => m[1]))];
    const given = [...serviceEnvironment(compose, 'caddy').keys()];
    expect(read.sort()).toEqual(given.sort());
  });

  it("the edge refuses exactly the bodies over the backend's largest body limit", () => {
    const caddyfile = readFileSync(new URL('vps/Caddyfile', root), 'utf8');
    const largest = Math.max(
      ...apiRoutes.map((route) => (route.body ? (route.bodyLimit ?? defaultBodyLimit) : 0)),
    );
    expect(largest).toBe(defaultBodyLimit);
    expect(/max_size (\d+)KiB/.exec(caddyfile)?.[1]).toBe(String(largest / 1024));
    const tooLarge = new RegExp(
      /@too_large header_regexp Content-Length "([^"]+)"/.exec(caddyfile)![1]!,
    );
    for (const length of [0, 1, 999, largest - 1, largest])
      expect(tooLarge.test(String(length))).toBe(false);
    for (const length of [largest + 1, largest + 9, largest + 464, 99_999, 100_000, 10 ** 12]) {
      expect(tooLarge.test(String(length)), String(length)).toBe(true);
    }
    expect(caddyfile).toContain(
      `"detail":"The request body exceeds the largest limit of any operation, ${largest} bytes."`,
    );
  });

  it('secrets are blank and test routes cannot be switched on from .env', () => {
    expect(SECRETS.map((key) => [key, env.active.get(key)])).toEqual(SECRETS.map((k) => [k, '']));
    expect(env.active.has('ENABLE_TEST_ROUTES')).toBe(false);
    expect(backendEnvironment.get('ENABLE_TEST_ROUTES')).toBe('false');
    expect(backendEnvironment.get('NODE_ENV')).toBe('production');
  });

  it('the stop grace period outlasts the shutdown delay plus the shutdown timeout', () => {
    const backend = compose.services?.['backend-a'];
    const delay = Number(env.active.get('SHUTDOWN_DELAY_MS'));
    const timeout = Number(env.active.get('SHUTDOWN_TIMEOUT_MS'));
    expect(durationMs(backend?.stop_grace_period ?? '10s')).toBeGreaterThan(delay + timeout);
  });
});
