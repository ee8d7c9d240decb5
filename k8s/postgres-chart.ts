import { ApiObject, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { Environment, ResolvedInClusterDatabase } from './environment.ts';
import {
  kubeResources,
  restrictedContainerSecurity,
  restrictedPodSecurity,
} from './pod-security.ts';
import { postgresMemoryArgs } from './postgres-memory.ts';
import {
  commonLabels,
  databaseSecret,
  namespaceNameLabel,
  postgresNames,
  selectorLabels,
} from './names.ts';

export interface PostgresChartProps {
  readonly env: Environment;
  readonly database: ResolvedInClusterDatabase;
}

const { k8s } = kplus;

/**
 * A single PostgreSQL instance for environments without a managed database: StatefulSet with its
 * own volume and a postgres_exporter sidecar, a headless Service for the StatefulSet's identity, the
 * Service the backend uses, and one for the exporter's metrics.
 */
export class PostgresChart extends Chart {
  readonly statefulSet: ApiObject;

  constructor(scope: Construct, id: string, props: PostgresChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env, database } = props;
    const labels = commonLabels('postgres');
    const selector = selectorLabels('postgres');
    const secretEnv = (name: string, key: string): kplus.k8s.EnvVar => ({
      name,
      valueFrom: { secretKeyRef: { name: databaseSecret.name, key } },
    });
    const passwordFile = `${databaseSecret.mountPath}/${databaseSecret.passwordKey}`;
    // `-h 127.0.0.1`: over the socket pg_isready also passes while the entrypoint's temporary
    // init-only server runs. The user and database keep every probe from logging a FATAL.
    const pgIsReady = [
      'sh',
      '-c',
      'exec pg_isready -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB"',
    ];

    const postgresPods = kplus.Pods.select(this, 'pods', { labels: selector });

    const headless = new kplus.Service(this, 'headless', {
      metadata: { name: postgresNames.headlessName, labels },
      clusterIP: 'None',
      selector: postgresPods,
      ports: [{ name: 'postgres', port: postgresNames.port, targetPort: postgresNames.port }],
    });

    new kplus.Service(this, 'service', {
      metadata: { name: postgresNames.name, labels },
      type: kplus.ServiceType.CLUSTER_IP,
      selector: postgresPods,
      ports: [{ name: 'postgres', port: postgresNames.port, targetPort: postgresNames.port }],
    });

    new kplus.Service(this, 'metrics-service', {
      metadata: { name: postgresNames.metricsServiceName, labels },
      type: kplus.ServiceType.CLUSTER_IP,
      selector: postgresPods,
      ports: [
        { name: 'metrics', port: postgresNames.metricsPort, targetPort: postgresNames.metricsPort },
      ],
    });

    const exporterProbe = (periodSeconds: number, failureThreshold: number) => ({
      // The landing page: it answers without a database query, so a slow database cannot restart
      // the sidecar; `pg_up` in the scrape says whether the database answers.
      httpGet: { path: '/', port: k8s.IntOrString.fromString('metrics') },
      periodSeconds,
      timeoutSeconds: 5,
      failureThreshold,
    });

    // Low-level KubeStatefulSet: kplus.StatefulSet has no volumeClaimTemplates.
    this.statefulSet = new k8s.KubeStatefulSet(this, 'statefulset', {
      metadata: { name: postgresNames.name, labels },
      spec: {
        serviceName: headless.name,
        replicas: 1,
        selector: { matchLabels: selector },
        podManagementPolicy: 'OrderedReady',
        updateStrategy: { type: 'RollingUpdate' },
        template: {
          metadata: {
            labels,
            annotations: {
              'prometheus.io/scrape': 'true',
              'prometheus.io/port': String(postgresNames.metricsPort),
              'prometheus.io/path': '/metrics',
            },
          },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            // Long enough for the preStop fast shutdown to finish a checkpoint.
            terminationGracePeriodSeconds: 60,
            securityContext: restrictedPodSecurity(postgresNames.uid, postgresNames.gid),
            containers: [
              {
                name: 'postgres',
                image: database.image,
                imagePullPolicy: 'IfNotPresent',
                // The entrypoint prepends `postgres` to args that start with '-'. Synth reads the
                // connection and memory budgets back from these.
                args: [
                  '-c',
                  `max_connections=${database.maxConnections}`,
                  ...postgresMemoryArgs(database.memory),
                ],
                ports: [{ name: 'postgres', containerPort: postgresNames.port, protocol: 'TCP' }],
                env: [
                  secretEnv('POSTGRES_USER', databaseSecret.userKey),
                  // The entrypoint reads the password from the mounted file on first boot only.
                  { name: 'POSTGRES_PASSWORD_FILE', value: passwordFile },
                  secretEnv('POSTGRES_DB', databaseSecret.databaseKey),
                  { name: 'PGDATA', value: postgresNames.pgdata },
                ],
                // Ephemeral storage covers the emptyDirs below (not the memory-backed one) and logs.
                resources: kubeResources(database.resources, { requestMiB: 256, limitMiB: 1024 }),
                securityContext: restrictedContainerSecurity(postgresNames.uid, postgresNames.gid),
                // The first boot runs initdb and the init scripts: allow 5 minutes.
                startupProbe: {
                  exec: { command: pgIsReady },
                  periodSeconds: 5,
                  timeoutSeconds: 5,
                  failureThreshold: 60,
                },
                readinessProbe: {
                  exec: { command: pgIsReady },
                  periodSeconds: 5,
                  timeoutSeconds: 5,
                  failureThreshold: 3,
                },
                livenessProbe: {
                  exec: { command: pgIsReady },
                  periodSeconds: 10,
                  timeoutSeconds: 5,
                  failureThreshold: 6,
                },
                lifecycle: {
                  // SIGTERM alone is a "smart" shutdown that waits for the backend's pooled
                  // connections to close, which they never do before the kill.
                  preStop: {
                    exec: {
                      command: ['sh', '-c', 'exec pg_ctl stop -D "$PGDATA" -m fast -w -t 50'],
                    },
                  },
                },
                volumeMounts: [
                  { name: 'data', mountPath: postgresNames.dataMountPath },
                  // Container runtimes give /dev/shm 64 MiB; parallel queries need more.
                  { name: 'shm', mountPath: '/dev/shm' },
                  // The read-only root filesystem leaves these as the only writable paths.
                  { name: 'run', mountPath: '/var/run/postgresql' },
                  { name: 'tmp', mountPath: '/tmp' },
                  { name: 'secret', mountPath: databaseSecret.mountPath, readOnly: true },
                ],
              },
              {
                // postgres_exporter beside the server: it reaches it over loopback, so no
                // NetworkPolicy opens 5432 for it, and it lives and dies with the database.
                name: 'exporter',
                image: database.exporterImage,
                imagePullPolicy: 'IfNotPresent',
                ports: [
                  { name: 'metrics', containerPort: postgresNames.metricsPort, protocol: 'TCP' },
                ],
                env: [
                  {
                    name: 'DATA_SOURCE_URI',
                    value: `127.0.0.1:${postgresNames.port}/postgres?sslmode=disable`,
                  },
                  secretEnv('DATA_SOURCE_USER', databaseSecret.userKey),
                  { name: 'DATA_SOURCE_PASS_FILE', value: passwordFile },
                ],
                resources: kubeResources(
                  {
                    cpuRequestMillis: 10,
                    cpuLimitMillis: 200,
                    memoryRequestMiB: 64,
                    memoryLimitMiB: 64,
                  },
                  { requestMiB: 16, limitMiB: 64 },
                ),
                securityContext: restrictedContainerSecurity(postgresNames.uid, postgresNames.gid),
                startupProbe: exporterProbe(2, 30),
                readinessProbe: exporterProbe(10, 3),
                livenessProbe: exporterProbe(20, 3),
                volumeMounts: [
                  { name: 'secret', mountPath: databaseSecret.mountPath, readOnly: true },
                ],
              },
            ],
            volumes: [
              {
                name: 'shm',
                emptyDir: {
                  medium: 'Memory',
                  sizeLimit: k8s.Quantity.fromString(
                    `${Math.floor(database.resources.memoryLimitMiB / 4)}Mi`,
                  ),
                },
              },
              { name: 'run', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('256Mi') } },
              {
                name: 'secret',
                secret: {
                  secretName: databaseSecret.name,
                  items: [{ key: databaseSecret.passwordKey, path: databaseSecret.passwordKey }],
                  // Group-readable: fsGroup makes the files the postgres group's.
                  defaultMode: 0o440,
                },
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels },
            spec: {
              accessModes: ['ReadWriteOnce'],
              storageClassName: database.storageClassName,
              resources: { requests: { storage: k8s.Quantity.fromString(database.storageSize) } },
            },
          },
        ],
        // Deleting the StatefulSet (kubectl delete -k on the release folder) keeps the claim.
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      },
    });

    // The backend and the backup pods may open a connection, the monitoring namespace may scrape
    // the exporter; egress stays closed by the namespace's default deny.
    const ingressPolicy = new kplus.NetworkPolicy(this, 'ingress-policy', {
      metadata: { name: `${postgresNames.name}-ingress`, labels },
      selector: postgresPods,
    });
    const clients = database.backup ? (['backend', 'backup'] as const) : (['backend'] as const);
    for (const component of clients) {
      ingressPolicy.addIngressRule(
        kplus.Pods.select(this, `${component}-pods`, { labels: selectorLabels(component) }),
        [kplus.NetworkPolicyPort.tcp(postgresNames.port)],
      );
    }
    ingressPolicy.addIngressRule(
      kplus.Namespaces.select(this, 'monitoring-namespace', {
        labels: { [namespaceNameLabel]: env.monitoring.namespace },
      }),
      [kplus.NetworkPolicyPort.tcp(postgresNames.metricsPort)],
    );
  }
}
