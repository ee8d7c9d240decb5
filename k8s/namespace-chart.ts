import { Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { Environment } from './environment.ts';

export interface NamespaceChartProps {
  readonly env: Environment;
}

/** The namespace and its default-deny policy: every other chart only opens what it needs. */
export class NamespaceChart extends Chart {
  constructor(scope: Construct, id: string, props: NamespaceChartProps) {
    super(scope, id, { disableResourceNameHashes: true });
    const { env } = props;

    new kplus.Namespace(this, 'namespace', {
      metadata: {
        name: env.namespace,
        labels: {
          // The API server rejects any pod that does not meet the "restricted" profile.
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
      },
    });

    new kplus.NetworkPolicy(this, 'default-deny', {
      metadata: { name: 'default-deny-all', namespace: env.namespace },
      selector: kplus.Pods.all(this, 'all-pods'),
      ingress: { default: kplus.NetworkPolicyTrafficDefault.DENY },
      egress: { default: kplus.NetworkPolicyTrafficDefault.DENY },
    });
  }
}
