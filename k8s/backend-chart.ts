import { createHash } from 'node:crypto';
import { ApiObject, Chart, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { Environment } from './environment.ts';
import {
  backendNames,
  commonLabels,
  databaseSecret,
  namespaceNameLabel,
  postgresNames,
  selectorLabels,
} from './names.ts';

export interface BackendChartProps {
  readonly env: Environment;
}

/** Delay plus timeout, and 15 s for the pool to end and logs to flush before the SIGKILL. */
export function terminationGracePeriodSeconds(env: Environment): number {
  return Math.ceil((env.backend.shutdownDelayMs + env.backend.shutdownTimeoutMs) / 1000) + 15;
}

/**
 * The API: Deployment with its ServiceAccount, ConfigMap, Service, PodDisruptionBudget, optional
 * HorizontalPodAutoscaler, HTTPRoute or Ingress, and the NetworkPolicies that open exactly what it
 * needs.
 */
export class BackendChart extends Chart {
  readonly deployment: kplus.Deployment;
  readonly service: kplus.Service;

  constructor(scope: Construct, id: string, props: BackendChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env } = props;
    const { backend } = env;
    const labels = commonLabels('backend');
    const selector = selectorLabels('backend');
    const pods = kplus.Pods.select(this, 'pods', { labels: selector });

    const serviceAccount = new kplus.ServiceAccount(this, 'service-account', {
      metadata: { name: backendNames.name, labels },
      // The backend never calls the Kubernetes API: no token in the pod.
      automountToken: false,
    });

    const settings = backendConfigMapData(env);
    const config = new kplus.ConfigMap(this, 'config', {
      metadata: { name: `${backendNames.name}-config`, labels },
      data: settings,
    });

    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp', { sizeLimit: Size.mebibytes(64) });
    const secretFiles = kplus.Volume.fromSecret(
      this,
      'secret-files',
      kplus.Secret.fromSecretName(this, 'database-secret', databaseSecret.name),
      {
        name: 'secret',
        items: { [databaseSecret.databaseUrlKey]: { path: databaseSecret.databaseUrlKey } },
        // Group-readable: fsGroup makes the file the backend group's.
        defaultMode: 0o440,
      },
    );
    const heapMiB = Math.floor(backend.resources.memoryLimitMiB * 0.75);

    this.deployment = new kplus.Deployment(this, 'deployment', {
      metadata: { name: backendNames.name, labels },
      // With an autoscaler the Deployment must not pin replicas, or every apply resets the HPA.
      replicas: backend.autoscaling ? undefined : backend.replicas,
      select: false,
      podMetadata: {
        labels,
        annotations: {
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': String(backendNames.metricsPort),
          'prometheus.io/path': backendNames.metricsPath,
          // envFrom does not restart pods when the ConfigMap changes; a changed template does.
          'checksum/config': createHash('sha256').update(JSON.stringify(settings)).digest('hex'),
        },
      },
      strategy: kplus.DeploymentStrategy.rollingUpdate({
        maxSurge: kplus.PercentOrAbsolute.absolute(backend.maxSurge),
        maxUnavailable: kplus.PercentOrAbsolute.absolute(0),
      }),
      serviceAccount,
      automountServiceAccountToken: false,
      terminationGracePeriod: Duration.seconds(terminationGracePeriodSeconds(env)),
      securityContext: {
        ensureNonRoot: true,
        user: backendNames.uid,
        group: backendNames.gid,
        fsGroup: backendNames.gid,
        fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
      },
      containers: [
        {
          name: 'backend',
          image: env.image.reference,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          // The image's CMD plus a heap ceiling: NODE_OPTIONS is not among the settings the
          // backend reads, and V8 otherwise sizes the heap from the node, not the limit.
          command: ['node', `--max-old-space-size=${heapMiB}`, 'backend/dist/main.js'],
          ports: [
            { name: 'http', number: backendNames.httpPort },
            { name: 'metrics', number: backendNames.metricsPort },
          ],
          envFrom: [kplus.Env.fromConfigMap(config)],
          envVariables: {
            // The URL holds the password: read from the mounted Secret file, never an env value.
            DATABASE_URL_FILE: kplus.EnvValue.fromValue(
              `${databaseSecret.mountPath}/${databaseSecret.databaseUrlKey}`,
            ),
          },
          resources: {
            cpu: {
              request: kplus.Cpu.millis(backend.resources.cpuRequestMillis),
              limit: kplus.Cpu.millis(backend.resources.cpuLimitMillis),
            },
            memory: {
              request: Size.mebibytes(backend.resources.memoryRequestMiB),
              limit: Size.mebibytes(backend.resources.memoryLimitMiB),
            },
          },
          securityContext: {
            ensureNonRoot: true,
            user: backendNames.uid,
            group: backendNames.gid,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            privileged: false,
            capabilities: { drop: [kplus.Capability.ALL] },
            seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
          },
          // The process listens before it migrates, so startup only waits for Node to boot (up to
          // 60 s on a slow node). Migrations, and waiting for another replica's advisory lock, are
          // gated by readiness instead, which has no deadline that restarts the pod.
          startup: kplus.Probe.fromHttpGet(backendNames.livenessPath, {
            port: backendNames.httpPort,
            periodSeconds: Duration.seconds(2),
            timeoutSeconds: Duration.seconds(2),
            failureThreshold: 30,
          }),
          // Cached DB check: three misses (15 s) before leaving the Service, so a short database
          // blip does not empty every endpoint at once.
          readiness: kplus.Probe.fromHttpGet(backendNames.readinessPath, {
            port: backendNames.httpPort,
            periodSeconds: Duration.seconds(backendNames.readinessPeriodSeconds),
            timeoutSeconds: Duration.seconds(2),
            failureThreshold: 3,
          }),
          liveness: kplus.Probe.fromHttpGet(backendNames.livenessPath, {
            port: backendNames.httpPort,
            periodSeconds: Duration.seconds(10),
            timeoutSeconds: Duration.seconds(2),
            failureThreshold: 3,
          }),
          volumeMounts: [
            { path: '/tmp', volume: tmp },
            { path: databaseSecret.mountPath, volume: secretFiles, readOnly: true },
          ],
        },
      ],
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: selector }));
    // Preferred, not required: a required rule leaves a second replica Pending on a one-node cluster.
    this.deployment.scheduling.spread({ topology: kplus.Topology.HOSTNAME, weight: 100 });

    // Patched because cdk8s-plus lacks them: probes take only a port number, ephemeral storage
    // only whole GiB, and there is no enableServiceLinks. Patch values go through the typed
    // serializer, so they must be IntOrString/Quantity objects (a plain string comes out null).
    const { IntOrString, Quantity } = kplus.k8s;
    const podSpec = '/spec/template/spec';
    const container = `${podSpec}/containers/0`;
    ApiObject.of(this.deployment).addJsonPatch(
      ...(['startupProbe', 'readinessProbe', 'livenessProbe'] as const).map((probe) =>
        JsonPatch.replace(`${container}/${probe}/httpGet/port`, IntOrString.fromString('http')),
      ),
      // Covers the /tmp emptyDir and the container's logs.
      JsonPatch.add(
        `${container}/resources/requests/ephemeral-storage`,
        Quantity.fromString('64Mi'),
      ),
      JsonPatch.add(
        `${container}/resources/limits/ephemeral-storage`,
        Quantity.fromString('256Mi'),
      ),
      // Service links would add a *_PORT variable per Service in the namespace to the environment.
      JsonPatch.add(`${podSpec}/enableServiceLinks`, false),
      // Spread over zones when the cluster has several, without ever leaving a pod Pending for it.
      // matchLabelKeys counts each rollout's pods on their own, so old pods do not skew new ones.
      JsonPatch.add(`${podSpec}/topologySpreadConstraints`, [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: selector },
          matchLabelKeys: ['pod-template-hash'],
        },
      ]),
    );
    if (env.image.pullSecrets.length > 0) {
      ApiObject.of(this.deployment).addJsonPatch(
        JsonPatch.add(
          `${podSpec}/imagePullSecrets`,
          env.image.pullSecrets.map((name) => ({ name })),
        ),
      );
    }

    this.service = new kplus.Service(this, 'service', {
      metadata: { name: backendNames.name, labels },
      type: kplus.ServiceType.CLUSTER_IP,
      selector: pods,
      ports: [
        { name: 'http', port: 80, targetPort: backendNames.httpPort },
        { name: 'metrics', port: backendNames.metricsPort, targetPort: backendNames.metricsPort },
      ],
    });

    // Low-level KubePodDisruptionBudget: cdk8s-plus has no PodDisruptionBudget construct.
    new kplus.k8s.KubePodDisruptionBudget(this, 'pdb', {
      metadata: { name: backendNames.name, labels },
      spec: {
        // maxUnavailable rather than minAvailable: a drain can always proceed one pod at a time.
        maxUnavailable: kplus.k8s.IntOrString.fromNumber(1),
        selector: { matchLabels: selector },
        unhealthyPodEvictionPolicy: 'AlwaysAllow',
      },
    });

    if (backend.autoscaling) {
      new kplus.HorizontalPodAutoscaler(this, 'hpa', {
        metadata: { name: backendNames.name, labels },
        target: this.deployment,
        minReplicas: backend.autoscaling.minReplicas,
        maxReplicas: backend.autoscaling.maxReplicas,
        metrics: [
          kplus.Metric.resourceCpu(
            kplus.MetricTarget.averageUtilization(backend.autoscaling.targetCpuUtilizationPercent),
          ),
        ],
        scaleUp: {
          stabilizationWindow: Duration.seconds(0),
          policies: [{ replicas: kplus.Replicas.absolute(2), duration: Duration.minutes(1) }],
        },
        // Slow scale-down: each removed pod drains its connections and requests first.
        scaleDown: {
          stabilizationWindow: Duration.minutes(5),
          policies: [{ replicas: kplus.Replicas.absolute(1), duration: Duration.minutes(1) }],
        },
      });
    }

    const expose = env.expose;
    if (expose?.kind === 'ingress') {
      new kplus.Ingress(this, 'ingress', {
        metadata: { name: backendNames.name, labels, annotations: { ...expose.annotations } },
        className: expose.className,
        rules: [
          {
            host: expose.host,
            path: '/',
            pathType: kplus.HttpIngressPathType.PREFIX,
            // Only the http port: metrics stay inside the cluster.
            backend: kplus.IngressBackend.fromService(this.service, { port: 80 }),
          },
        ],
        tls: expose.tlsSecretName
          ? [
              {
                hosts: [expose.host],
                secret: kplus.Secret.fromSecretName(this, 'tls', expose.tlsSecretName),
              },
            ]
          : undefined,
      });
    }
    if (expose?.kind === 'gateway') {
      // A plain ApiObject: the Gateway API is a CRD; k8s/test validates it against the published
      // model (@kubernetes-models/gateway-api). TLS is the Gateway's business, not the route's.
      new ApiObject(this, 'http-route', {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: backendNames.name, labels },
        spec: {
          parentRefs: [
            {
              group: 'gateway.networking.k8s.io',
              kind: 'Gateway',
              name: expose.gateway.name,
              namespace: expose.gateway.namespace,
              sectionName: expose.gateway.sectionName,
            },
          ],
          hostnames: [expose.host],
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/' } }],
              // Only the http port: metrics stay inside the cluster.
              backendRefs: [{ group: '', kind: 'Service', name: this.service.name, port: 80 }],
            },
          ],
        },
      });
    }

    const ingressPolicy = new kplus.NetworkPolicy(this, 'ingress-policy', {
      metadata: { name: `${backendNames.name}-ingress`, labels },
      selector: pods,
    });
    if (expose) {
      // The gateway's proxies or the ingress controller: whichever the environment routes through.
      const edgeNamespace = namespaceNamed(this, 'edge-namespace', expose.edge.namespace);
      const edge =
        Object.keys(expose.edge.podLabels).length > 0
          ? kplus.Pods.select(this, 'edge-pods', {
              labels: { ...expose.edge.podLabels },
              namespaces: edgeNamespace,
            })
          : edgeNamespace;
      ingressPolicy.addIngressRule(edge, [kplus.NetworkPolicyPort.tcp(backendNames.httpPort)]);
    }
    ingressPolicy.addIngressRule(
      namespaceNamed(this, 'monitoring-namespace', env.monitoring.namespace),
      [kplus.NetworkPolicyPort.tcp(backendNames.metricsPort)],
    );

    const egressPolicy = new kplus.NetworkPolicy(this, 'egress-policy', {
      metadata: { name: `${backendNames.name}-egress`, labels },
      selector: pods,
    });
    if (env.database.mode === 'in-cluster') {
      egressPolicy.addEgressRule(
        kplus.Pods.select(this, 'postgres-pods', { labels: selectorLabels('postgres') }),
        [kplus.NetworkPolicyPort.tcp(postgresNames.port)],
      );
    } else {
      egressPolicy.addEgressRule(
        kplus.NetworkPolicyIpBlock.ipv4(this, 'database-address', env.database.cidr),
        [kplus.NetworkPolicyPort.tcp(env.database.port)],
      );
    }
    egressPolicy.addEgressRule(
      kplus.Pods.select(this, 'kube-dns', {
        labels: { 'k8s-app': 'kube-dns' },
        namespaces: namespaceNamed(this, 'kube-system-namespace', 'kube-system'),
      }),
      [kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)],
    );
  }
}

function namespaceNamed(scope: Construct, id: string, name: string): kplus.Namespaces {
  return kplus.Namespaces.select(scope, id, { labels: { [namespaceNameLabel]: name } });
}

/**
 * The backend's non-secret settings. Every key must be one `configKeys` (backend/src/config.ts)
 * declares; k8s/test checks that, and that `loadConfig` accepts the result.
 */
export function backendConfigMapData(env: Environment): Record<string, string> {
  const { backend } = env;
  return {
    NODE_ENV: 'production',
    PORT: String(backendNames.httpPort),
    METRICS_PORT: String(backendNames.metricsPort),
    METRICS_ENABLED: 'true',
    LOG_LEVEL: backend.logLevel,
    TRUST_PROXY: backend.trustProxy,
    DATABASE_POOL_MAX: String(backend.poolMax),
    DATABASE_CONNECT_TIMEOUT_MS: '2000',
    DATABASE_STATEMENT_TIMEOUT_MS: '5000',
    // Every replica migrates at start; an advisory lock makes the others wait (see k8s/README.md).
    MIGRATE_ON_START: 'true',
    SHUTDOWN_DELAY_MS: String(backend.shutdownDelayMs),
    SHUTDOWN_TIMEOUT_MS: String(backend.shutdownTimeoutMs),
  };
}
