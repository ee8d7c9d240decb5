import { readFileSync } from 'node:fs';
import { ApiObject, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { alertRuleGroups, kubernetesAlertOptions } from '../monitoring/alerts.ts';
import type { Environment } from './environment.ts';
import { backendNames, backupNames, commonLabels, postgresNames, selectorLabels } from './names.ts';

export interface MonitoringChartProps {
  readonly env: Environment;
  readonly releaseLabel: string;
}

/** The dashboard shipped in the repository; the same file the compose override provisions. */
export const dashboardFile = new URL('../monitoring/grafana/tasks-backend.json', import.meta.url);

/**
 * prometheus-operator objects, emitted only where the operator runs (its CRDs must exist before
 * apply): ServiceMonitors for the backend and the database's exporter, the alerting rules as a
 * PrometheusRule, and the Grafana dashboard as a ConfigMap for Grafana's sidecar
 * (kube-prometheus-stack ships all three consumers, and kube-state-metrics for the backup alert).
 */
export class MonitoringChart extends Chart {
  readonly serviceMonitor: ApiObject;
  readonly prometheusRule: ApiObject;
  readonly dashboard: kplus.ConfigMap | undefined;

  constructor(scope: Construct, id: string, props: MonitoringChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env, releaseLabel } = props;
    // The operator's serviceMonitorSelector and ruleSelector match on this (kube-prometheus-stack:
    // its Helm release name).
    const labels = { ...commonLabels('backend'), release: releaseLabel };

    // Plain ApiObjects: a CRD type would need `cdk8s import` of the operator's CRDs. k8s/test
    // validates them against the published models (@kubernetes-models/prometheus-operator).
    const serviceMonitor = (id: string, name: string, component: 'backend' | 'postgres') =>
      new ApiObject(this, id, {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: { name, labels: { ...commonLabels(component), release: releaseLabel } },
        spec: {
          selector: { matchLabels: selectorLabels(component) },
          namespaceSelector: { matchNames: [env.namespace] },
          // Only the Service port named `metrics`: each component has one Service that carries it.
          endpoints: [
            {
              port: 'metrics',
              path: '/metrics',
              scheme: 'http',
              interval: '30s',
              scrapeTimeout: '10s',
            },
          ],
        },
      });
    this.serviceMonitor = serviceMonitor('service-monitor', backendNames.name, 'backend');
    const database = env.database.mode === 'in-cluster' ? env.database : undefined;
    if (database) serviceMonitor('postgres-service-monitor', postgresNames.name, 'postgres');

    // The rules of monitoring/alerts.ts, scoped to this namespace: the operator names each job
    // after its Service (tasks-backend, tasks-postgres-metrics); kube-state-metrics and the kubelet
    // label the CronJob and volume series with the namespace.
    this.prometheusRule = new ApiObject(this, 'prometheus-rule', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: backendNames.name, labels },
      spec: {
        groups: alertRuleGroups(
          kubernetesAlertOptions({
            namespace: env.namespace,
            database: database && {
              metricsService: postgresNames.metricsServiceName,
              claims: [
                postgresNames.dataClaimName,
                ...(database.backup ? [backupNames.claim] : []),
              ],
            },
            backup: database?.backup && {
              cronJob: backupNames.cronJob,
              intervalSeconds: database.backup.intervalSeconds,
            },
          }),
        ),
      },
    });

    const dashboard = env.monitoring.prometheusOperator?.grafanaDashboard;
    this.dashboard =
      dashboard &&
      new kplus.ConfigMap(this, 'grafana-dashboard', {
        metadata: {
          name: `${backendNames.name}-dashboard`,
          namespace: dashboard.namespace,
          labels: { ...commonLabels('backend'), [dashboard.labelName]: dashboard.labelValue },
        },
        data: { 'tasks-backend.json': readFileSync(dashboardFile, 'utf8') },
      });
  }
}
