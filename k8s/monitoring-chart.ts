import { readFileSync } from 'node:fs';
import { ApiObject, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { alertRuleGroups } from '../monitoring/alerts.ts';
import type { Environment } from './environment.ts';
import { backendNames, commonLabels, selectorLabels } from './names.ts';

export interface MonitoringChartProps {
  readonly env: Environment;
  readonly releaseLabel: string;
}

/** The dashboard shipped in the repository; the same file the compose override provisions. */
export const dashboardFile = new URL('../monitoring/grafana/tasks-backend.json', import.meta.url);

/**
 * prometheus-operator objects, emitted only where the operator runs (its CRDs must exist before
 * apply): the ServiceMonitor, the alerting rules as a PrometheusRule, and the Grafana dashboard as a
 * ConfigMap for Grafana's sidecar (kube-prometheus-stack ships all three consumers).
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

    // Plain ApiObjects: a CRD type would need `cdk8s import` of the operator's CRDs, and these are
    // the only field sets we use. The tests check their shape.
    this.serviceMonitor = new ApiObject(this, 'service-monitor', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: backendNames.name, labels },
      spec: {
        selector: { matchLabels: selectorLabels('backend') },
        namespaceSelector: { matchNames: [env.namespace] },
        endpoints: [
          {
            port: 'metrics',
            path: backendNames.metricsPath,
            scheme: 'http',
            interval: '30s',
            scrapeTimeout: '10s',
          },
        ],
      },
    });

    // The same rules as monitoring/prometheus/alerts.yml. The operator names the job after the
    // Service; the namespace keeps one Prometheus watching several environments apart.
    this.prometheusRule = new ApiObject(this, 'prometheus-rule', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: backendNames.name, labels },
      spec: {
        groups: alertRuleGroups({
          selector: `job="${backendNames.name}", namespace="${env.namespace}"`,
        }),
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
