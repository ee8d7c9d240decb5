import { ApiObject, Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import type { Environment } from './environment.ts';
import { appName, databaseSecret, requiredSecretKeys } from './names.ts';

export interface SecretChartProps {
  readonly env: Environment;
}

/**
 * Where `tasks-db` comes from when it is not created by hand: an ExternalSecret (External Secrets
 * Operator copies the keys from a store) or a SealedSecret (values encrypted for this namespace and
 * name, safe to commit). Applied once, with the Namespace (setup/): deleting either deletes the
 * Secret it owns. Plain ApiObjects; k8s/test validates them against the published models.
 */
export class SecretChart extends Chart {
  constructor(scope: Construct, id: string, props: SecretChartProps) {
    super(scope, id, { namespace: props.env.namespace, disableResourceNameHashes: true });
    const { env } = props;
    const secret = env.secret;
    const labels = { 'app.kubernetes.io/name': appName, 'app.kubernetes.io/part-of': appName };
    const keys = requiredSecretKeys(env.database.mode);

    if (secret.source === 'external-secrets') {
      new ApiObject(this, 'external-secret', {
        apiVersion: 'external-secrets.io/v1',
        kind: 'ExternalSecret',
        metadata: { name: databaseSecret.name, labels },
        spec: {
          secretStoreRef: { kind: secret.store.kind, name: secret.store.name },
          refreshInterval: secret.refreshInterval,
          target: {
            name: databaseSecret.name,
            // The operator owns the Secret it writes; Retain keeps the last values if the store
            // becomes unreachable or the remote entry disappears.
            creationPolicy: 'Owner',
            deletionPolicy: 'Retain',
          },
          // One entry per key, so a key missing from the store fails the sync by name instead of
          // leaving a Secret the pods cannot start with.
          data: keys.map((key) => ({
            secretKey: key,
            remoteRef: { key: secret.remoteKey, property: key },
          })),
        },
      });
    }

    if (secret.source === 'sealed-secrets') {
      new ApiObject(this, 'sealed-secret', {
        apiVersion: 'bitnami.com/v1alpha1',
        kind: 'SealedSecret',
        metadata: { name: databaseSecret.name, labels },
        spec: {
          // Sealed with the default "strict" scope: only this name in this namespace can open them.
          encryptedData: Object.fromEntries(keys.map((key) => [key, secret.encryptedData[key]])),
          template: {
            metadata: { name: databaseSecret.name, namespace: env.namespace, labels },
            type: 'Opaque',
          },
        },
      });
    }
  }
}
