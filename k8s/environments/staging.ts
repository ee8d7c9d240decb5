import type { EnvironmentSettings } from '../environment.ts';

/**
 * Staging on a managed PostgreSQL (external-database mode): no StatefulSet and no backup CronJob
 * (the provider backs up), and backend egress is limited to the database's private address. The
 * Secret then holds only DATABASE_URL. Exposed through an Ingress, the option for clusters whose
 * controller does not speak the Gateway API, with cert-manager issuing its certificate.
 * Budget: (maxReplicas 4 + maxSurge 1) x (pool 10 + probe 1) + reserve 10 = 65 < max_connections 100.
 */
export const staging: EnvironmentSettings = {
  name: 'staging',
  namespace: 'tasks-staging',
  image: { repository: 'ghcr.io/example/tasks-backend', tag: '0.1.0' },
  backend: {
    autoscaling: { minReplicas: 2, maxReplicas: 4 },
    resources: {
      cpuRequestMillis: 100,
      cpuLimitMillis: 500,
      memoryRequestMiB: 384,
      memoryLimitMiB: 384,
    },
  },
  database: { mode: 'external', cidr: '10.20.0.15/32', port: 5432, maxConnections: 100 },
  expose: {
    kind: 'ingress',
    host: 'tasks-staging.example.com',
    className: 'nginx',
    annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' },
    tlsSecretName: 'tasks-staging-tls',
    controller: { namespace: 'ingress-nginx' },
  },
  monitoring: { prometheusOperator: { releaseLabel: 'kube-prometheus-stack' } },
};
