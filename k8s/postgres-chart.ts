import { ApiObject, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { ContainerResources, Environment } from './environment.ts';
import { commonLabels, databaseSecret, postgresNames, selectorLabels } from './names.ts';

export interface PostgresChartProps {
  readonly env: Environment;
  readonly database: Extract<Environment['database'], { mode: 'in-cluster' }>;
}

const { k8s } = kplus;

/**
 * A single PostgreSQL instance for environments without a managed database: StatefulSet with its
 * own volume, a headless Service for the StatefulSet's identity and the Service the backend uses.
 */
export class PostgresChart extends Chart {
  readonly statefulSet: ApiObject;

  constructor(scope: Construct, id: string, props: PostgresChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { database } = props;
    const labels = commonLabels('postgres');
    const selector = selectorLabels('postgres');
    const secretEnv = (name: string, key: string): kplus.k8s.EnvVar => ({
      name,
      valueFrom: { secretKeyRef: { name: databaseSecret.name, key } },
    });
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
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            // Long enough for the preStop fast shutdown to finish a checkpoint.
            terminationGracePeriodSeconds: 60,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: postgresNames.uid,
              runAsGroup: postgresNames.gid,
              fsGroup: postgresNames.gid,
              fsGroupChangePolicy: 'OnRootMismatch',
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'postgres',
                image: database.image,
                imagePullPolicy: 'IfNotPresent',
                // The entrypoint prepends `postgres` to args that start with '-'.
                args: ['-c', `max_connections=${database.maxConnections}`],
                ports: [{ name: 'postgres', containerPort: postgresNames.port, protocol: 'TCP' }],
                env: [
                  secretEnv('POSTGRES_USER', databaseSecret.userKey),
                  secretEnv('POSTGRES_PASSWORD', databaseSecret.passwordKey),
                  secretEnv('POSTGRES_DB', databaseSecret.databaseKey),
                  { name: 'PGDATA', value: postgresNames.pgdata },
                ],
                // Ephemeral storage covers the emptyDirs below (not the memory-backed one) and logs.
                resources: kubeResources(database.resources, { requestMiB: 256, limitMiB: 1024 }),
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: postgresNames.uid,
                  runAsGroup: postgresNames.gid,
                  allowPrivilegeEscalation: false,
                  privileged: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                  seccompProfile: { type: 'RuntimeDefault' },
                },
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
                ],
              },
            ],
            volumes: [
              {
                name: 'shm',
                emptyDir: {
                  medium: 'Memory',
                  sizeLimit: k8s.Quantity.fromString(shmSize(database.resources)),
                },
              },
              { name: 'run', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
              { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('256Mi') } },
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
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      },
    });

    // Only the backend may open a connection; egress stays closed by the namespace's default deny.
    const ingressPolicy = new kplus.NetworkPolicy(this, 'ingress-policy', {
      metadata: { name: `${postgresNames.name}-ingress`, labels },
      selector: postgresPods,
    });
    ingressPolicy.addIngressRule(
      kplus.Pods.select(this, 'backend-pods', { labels: selectorLabels('backend') }),
      [kplus.NetworkPolicyPort.tcp(postgresNames.port)],
    );
  }
}

/** A quarter of the memory limit: shared memory counts against the container's limit. */
function shmSize(resources: ContainerResources): string {
  return `${Math.floor(resources.memoryLimitMiB / 4)}Mi`;
}

function kubeResources(
  r: ContainerResources,
  ephemeral: { requestMiB: number; limitMiB: number },
): kplus.k8s.ResourceRequirements {
  const q = (value: string) => k8s.Quantity.fromString(value);
  return {
    requests: {
      cpu: q(`${r.cpuRequestMillis}m`),
      memory: q(`${r.memoryRequestMiB}Mi`),
      'ephemeral-storage': q(`${ephemeral.requestMiB}Mi`),
    },
    limits: {
      cpu: q(`${r.cpuLimitMillis}m`),
      memory: q(`${r.memoryLimitMiB}Mi`),
      'ephemeral-storage': q(`${ephemeral.limitMiB}Mi`),
    },
  };
}
