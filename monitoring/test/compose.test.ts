import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defaultExporterImage } from '../../k8s/environment.ts';
import { composeJobs } from '../alerts.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
// merge: the base file builds both replicas from one `<<: *backend` definition.
const load = (file: string) => parse(readFileSync(`${root}${file}`, 'utf8'), { merge: true });

const base = load('docker-compose.yml');
const override = load('docker-compose.monitoring.yml');
const scrapeConfig = load('monitoring/prometheus/prometheus.compose.yml');

/** `./host/path:/container/path[:ro]` -> both sides; the host side may be `${VAR:-default}`. */
const mounts = (service: { volumes?: string[] }) =>
  (service.volumes ?? []).map((volume) => {
    const [, host, container, mode] =
      /^((?:\$\{[^}]*\}|[^:])+):([^:]+)(?::(ro|rw))?$/.exec(volume) ?? [];
    return { host: host!, container: container!, readOnly: mode === 'ro' };
  });

/** A service's networks once the override is merged over the base file (Compose unions the lists). */
const networksOf = (name: string): string[] => [
  ...(base.services[name]?.networks ?? []),
  ...(override.services[name]?.networks ?? []),
];
const job = (name: string) => scrapeConfig.scrape_configs.find((j: any) => j.job_name === name);
const hardened = (name: string) => {
  const service = override.services[name];
  expect(service.read_only, name).toBe(true);
  expect(service.cap_drop, name).toEqual(['ALL']);
  expect(service.security_opt, name).toEqual(['no-new-privileges:true']);
  expect(service.ports, `${name} publishes nothing`).toBeUndefined();
  expect(service.user, name).toMatch(/^\d+:\d+$/);
};

describe('docker-compose.monitoring.yml (Prometheus, Grafana and the exporters for the VPS, off by default)', () => {
  it('adds services only through the override: docker-compose.yml alone has no Prometheus', () => {
    expect(Object.keys(base.services)).not.toContain('prometheus');
    expect(Object.keys(override.services).sort()).toEqual([
      'backend-a',
      'backend-b',
      'grafana',
      'node-exporter',
      'postgres-exporter',
      'prometheus',
    ]);
    // The replicas only gain a network: the override defines no second backend.
    for (const replica of ['backend-a', 'backend-b']) {
      expect(Object.keys(base.services)).toContain(replica);
      expect(Object.keys(override.services[replica])).toEqual(['networks']);
    }
  });

  it('pins the images to version tags; the exporter is the Kubernetes sidecar’s version', () => {
    expect(override.services.prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(override.services.grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(override.services['node-exporter'].image).toMatch(
      /^quay\.io\/prometheus\/node-exporter:v\d+\.\d+\.\d+$/,
    );
    expect(override.services['postgres-exporter'].image).toBe(defaultExporterImage);
  });

  it('mounts files that exist in the repository, the rules file among them', () => {
    for (const name of ['prometheus', 'grafana']) {
      for (const { host } of mounts(override.services[name]).filter((m) =>
        m.host.startsWith('./'),
      )) {
        expect(existsSync(`${root}${host}`), `${name}: ${host}`).toBe(true);
      }
    }
    const prometheus = mounts(override.services.prometheus);
    const rules = prometheus.find((m) => m.host === './monitoring/prometheus/alerts.yml');
    const config = prometheus.find(
      (m) => m.host === './monitoring/prometheus/prometheus.compose.yml',
    );
    expect(config?.container).toBe('/etc/prometheus/prometheus.yml');
    expect(override.services.prometheus.command).toContain(`--config.file=${config?.container}`);
    expect(scrapeConfig.rule_files).toEqual([rules?.container]);
  });

  it('scrapes both backend replicas on their METRICS_PORT, as the job the rules select, over a network they share', () => {
    const metricsPort = base.services['backend-a'].environment.METRICS_PORT as string;
    const backend = job(composeJobs.backend);
    expect(backend.metrics_path).toBe('/metrics');
    expect(backend.static_configs).toEqual([
      { targets: [`backend-a:${metricsPort}`, `backend-b:${metricsPort}`] },
    ]);
  });

  it('every scrape target is a service sharing a network with Prometheus, which never joins the database network', () => {
    const prometheusNetworks: string[] = override.services.prometheus.networks;
    expect(prometheusNetworks).not.toContain('database');
    for (const network of prometheusNetworks)
      expect(Object.keys(override.networks)).toContain(network);
    const targets = scrapeConfig.scrape_configs
      .filter((j: any) => j.job_name !== 'prometheus')
      .flatMap((j: any) => j.static_configs.flatMap((c: any) => c.targets as string[]));
    expect(targets.length).toBe(4);
    for (const target of targets) {
      const service = target.split(':')[0]!;
      expect(
        networksOf(service).some((n) => prometheusNetworks.includes(n)),
        `${target}: no network shared with Prometheus`,
      ).toBe(true);
    }
  });

  it('postgres_exporter reaches db over the database network with the password as a compose secret, hardened', () => {
    const exporter = override.services['postgres-exporter'];
    expect(job(composeJobs.postgres).static_configs).toEqual([
      { targets: ['postgres-exporter:9187'] },
    ]);
    expect(exporter.networks.sort()).toEqual(['database', 'monitoring']);
    expect(exporter.secrets).toEqual(['postgres_password']);
    expect(Object.keys(base.secrets ?? {})).toContain('postgres_password');
    expect(exporter.environment).toEqual({
      DATA_SOURCE_URI: 'db:5432/${POSTGRES_DB:-tasks}?sslmode=disable',
      DATA_SOURCE_USER: '${POSTGRES_USER:-tasks}',
      DATA_SOURCE_PASS_FILE: '/run/secrets/postgres_password',
    });
    expect(exporter.depends_on).toEqual({ db: { condition: 'service_healthy' } });
    hardened('postgres-exporter');
  });

  it('node-exporter serves only the backup status file, from BACKUP_DIR read-only, as the user that owns it', () => {
    const nodeExporter = override.services['node-exporter'];
    expect(job(composeJobs.backup).static_configs).toEqual([{ targets: ['node-exporter:9100'] }]);
    expect(nodeExporter.command).toEqual([
      '--collector.disable-defaults',
      '--collector.textfile',
      '--collector.textfile.directory=/backups/status',
      '--web.listen-address=:9100',
    ]);
    // The backup service's own mount of the same directory, and the status file's place under it.
    const backupMount = mounts(base.services.backup).find((m) => m.container === '/backups');
    expect(mounts(nodeExporter)).toEqual([
      { host: backupMount?.host, container: '/backups', readOnly: true },
    ]);
    expect(base.services.backup.environment.BACKUP_DIR).toBe('/backups');
    expect(nodeExporter.user).toBe(base.services.backup.user);
    expect(nodeExporter.networks).toEqual(['monitoring']);
    hardened('node-exporter');
  });

  it('publishes the UIs on the loopback only', () => {
    for (const name of ['prometheus', 'grafana']) {
      for (const port of override.services[name].ports as string[]) {
        expect(port, name).toMatch(/^127\.0\.0\.1:/);
      }
    }
  });
});
