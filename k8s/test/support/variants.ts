import type { BuildOptions } from '../../environment-app.ts';
import type { EnvironmentSettings } from '../../environment.ts';
import { dev } from '../../environments/dev.ts';
import { production } from '../../environments/production.ts';
import { staging } from '../../environments/staging.ts';
import { synthesize, synthesizedEnvironments, type Synthesized } from './manifests.ts';

/** Looks like `kubeseal --raw` output (base64 of an RSA-sealed value); opens nowhere. */
const sealed = (key: string) => `AgB${Buffer.from(`sealed ${key} `.repeat(6)).toString('base64')}`;

/**
 * Every option besides the defaults, each on the environment it changes, so the schema, policy,
 * reachability and kubectl checks cover what an operator can switch on, not only what the
 * environment files use.
 */
export const optionVariants: readonly {
  readonly label: string;
  readonly settings: EnvironmentSettings;
  readonly options: BuildOptions;
}[] = [
  {
    label: 'production with an Ingress instead of the Gateway',
    settings: production,
    options: {
      overrides: {
        expose: 'ingress',
        host: 'tasks.acme.io',
        ingressClass: 'traefik',
        ingressAnnotations: {
          'cert-manager.io/cluster-issuer': 'letsencrypt',
          'traefik.ingress.kubernetes.io/router.entrypoints': 'websecure',
        },
        ingressControllerNamespace: 'traefik',
        tlsSecret: 'tasks-acme-io-tls',
      },
    },
  },
  {
    label: 'production with Envoy Gateway proxies, selected by label',
    settings: {
      ...production,
      expose: {
        kind: 'gateway',
        host: 'tasks.acme.io',
        gateway: { name: 'eg', namespace: 'infra' },
        proxies: {
          namespace: 'envoy-gateway-system',
          podLabels: { 'gateway.envoyproxy.io/owning-gateway-name': 'eg' },
        },
      },
    },
    options: {},
  },
  {
    label: 'production with External Secrets',
    settings: production,
    options: {
      overrides: {
        secretSource: 'external-secrets',
        secretStore: { kind: 'ClusterSecretStore', name: 'vault' },
        secretRemoteKey: 'tasks/production/db',
      },
    },
  },
  {
    label: 'production with Sealed Secrets, a private registry and a restore',
    settings: production,
    options: {
      overrides: {
        secretSource: 'sealed-secrets',
        sealedSecrets: Object.fromEntries(
          ['DATABASE_URL', 'POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB'].map((key) => [
            key,
            sealed(key),
          ]),
        ),
        imagePullSecrets: ['ghcr-pull'],
      },
      restoreDump: 'tasks-20261130T120000Z.dump',
    },
  },
  {
    label: 'staging with External Secrets (DATABASE_URL only)',
    settings: staging,
    options: {
      overrides: {
        secretSource: 'external-secrets',
        secretStore: { kind: 'SecretStore', name: 'aws' },
        secretRemoteKey: 'tasks-staging-db',
      },
    },
  },
  {
    label: 'dev without backups',
    settings: { ...dev, database: { ...dev.database, backup: false } as typeof dev.database },
    options: {},
  },
];

export interface Labelled extends Synthesized {
  /** The environment's name, or the variant's description. */
  readonly label: string;
}

/** The environments and every option variant, for the checks that must hold for all of them. */
export const everySynthesis: readonly Labelled[] = [
  ...synthesizedEnvironments.map((s) => ({ ...s, label: s.env.name })),
  ...optionVariants.map((v) => ({ ...synthesize(v.settings, v.options), label: v.label })),
];
