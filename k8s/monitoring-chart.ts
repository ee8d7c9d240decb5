import { ApiObject, Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import type { Environment } from './environment.ts';
import { backendNames, commonLabels, selectorLabels } from './names.ts';

export interface MonitoringChartProps {
  readonly env: Environment;
  readonly releaseLabel: string;
}

/**
 * prometheus-operator objects, emitted only where the operator runs (its CRDs must exist before
 * apply). Alerting rules and dashboards belong here too.
 */
export class MonitoringChart extends Chart {
  readonly serviceMonitor: ApiObject;

  constructor(scope: Construct, id: string, props: MonitoringChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env, releaseLabel } = props;

    // A plain ApiObject: a CRD type would need `cdk8s import` of the operator's CRDs, and this is
    // the only field set we use. The test checks its shape.
    this.serviceMonitor = new ApiObject(this, 'service-monitor', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: {
        name: backendNames.name,
        // The operator's serviceMonitorSelector matches on this (kube-prometheus-stack: release name).
        labels: { ...commonLabels('backend'), release: releaseLabel },
      },
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
  }
}
