import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const load = (file: string) => parse(readFileSync(`${root}${file}`, 'utf8'));

const base = load('docker-compose.yml');
const override = load('docker-compose.monitoring.yml');
const scrapeConfig = load('monitoring/prometheus/prometheus.compose.yml');

/** `./host/path:/container/path[:ro]` -> both sides. */
const mounts = (service: { volumes?: string[] }) =>
  (service.volumes ?? []).map((volume) => {
    const [host, container] = volume.split(':');
    return { host: host!, container: container! };
  });

describe('docker-compose.monitoring.yml (Prometheus and Grafana for the VPS, off by default)', () => {
  it('adds services only through the override: docker-compose.yml alone has no Prometheus', () => {
    expect(Object.keys(base.services)).not.toContain('prometheus');
    expect(Object.keys(override.services).sort()).toEqual(['backend', 'grafana', 'prometheus']);
  });

  it('pins the images to version tags', () => {
    expect(override.services.prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(override.services.grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
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

  it('scrapes the backend service on its METRICS_PORT over a network both share, as the job the rules select', () => {
    const metricsPort = base.services.backend.environment.METRICS_PORT as string;
    const job = scrapeConfig.scrape_configs.find((j: any) => j.job_name === 'tasks-backend');
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs).toEqual([{ targets: [`backend:${metricsPort}`] }]);
    const backendNetworks = [
      ...base.services.backend.networks,
      ...override.services.backend.networks,
    ];
    for (const network of override.services.prometheus.networks) {
      expect(backendNetworks).toContain(network);
      expect(Object.keys(override.networks)).toContain(network);
    }
    // Not the database network: Prometheus has no business next to PostgreSQL.
    expect(override.services.prometheus.networks).not.toContain('database');
  });

  it('publishes the UIs on the loopback only', () => {
    for (const name of ['prometheus', 'grafana']) {
      for (const port of override.services[name].ports as string[]) {
        expect(port, name).toMatch(/^127\.0\.0\.1:/);
      }
    }
  });
});
