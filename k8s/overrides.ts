import type { EnvironmentSettings, ImageSettings, SecretSource } from './environment.ts';

/**
 * Settings given at synth time (from the environment variables k8s/synth-settings.ts reads). Each
 * one replaces the environment file's value; an empty string is an error, never "use the default".
 */
export interface SynthOverrides {
  readonly imageRepository?: string;
  readonly imageTag?: string;
  readonly imagePullSecrets?: readonly string[];
  readonly namespace?: string;
  readonly expose?: 'gateway' | 'ingress' | 'none';
  readonly host?: string;
  readonly gatewayName?: string;
  readonly gatewayNamespace?: string;
  readonly gatewaySection?: string;
  readonly gatewayProxyNamespace?: string;
  readonly ingressClass?: string;
  readonly ingressAnnotations?: Readonly<Record<string, string>>;
  readonly ingressControllerNamespace?: string;
  readonly tlsSecret?: string;
  readonly monitoringNamespace?: string;
  readonly prometheusRelease?: string;
  readonly secretSource?: SecretSource['source'];
  readonly secretStore?: {
    readonly kind: 'SecretStore' | 'ClusterSecretStore';
    readonly name: string;
  };
  readonly secretRemoteKey?: string;
  readonly sealedSecrets?: Readonly<Record<string, string>>;
}

/** The environment file's settings with the synth-time overrides applied; problems for gaps. */
export function applyOverrides(
  settings: EnvironmentSettings,
  o: SynthOverrides,
  problems: string[],
): EnvironmentSettings {
  const image: ImageSettings = {
    repository: o.imageRepository ?? settings.image.repository,
    tag: o.imageTag ?? settings.image.tag,
    pullSecrets: o.imagePullSecrets ?? settings.image.pullSecrets,
  };

  let expose = settings.expose;
  const kind = o.expose ?? expose?.kind ?? 'none';
  if (kind === 'none') {
    expose = undefined;
  } else {
    const host = o.host ?? expose?.host;
    if (host === undefined) problems.push(`expose: ${kind} needs a host (K8S_HOST)`);
    if (kind === 'gateway') {
      const current = expose?.kind === 'gateway' ? expose : undefined;
      const name = o.gatewayName ?? current?.gateway.name;
      const namespace = o.gatewayNamespace ?? current?.gateway.namespace;
      if (name === undefined || namespace === undefined) {
        problems.push(
          'expose: gateway needs the Gateway to attach to (K8S_GATEWAY_NAME and K8S_GATEWAY_NAMESPACE)',
        );
      }
      expose = {
        kind,
        host: host ?? '',
        gateway: {
          name: name ?? '',
          namespace: namespace ?? '',
          sectionName: o.gatewaySection ?? current?.gateway.sectionName,
        },
        proxies: {
          ...current?.proxies,
          ...(o.gatewayProxyNamespace !== undefined && { namespace: o.gatewayProxyNamespace }),
        },
      };
    } else {
      const current = expose?.kind === 'ingress' ? expose : undefined;
      expose = {
        kind,
        host: host ?? '',
        className: o.ingressClass ?? current?.className,
        annotations: o.ingressAnnotations ?? current?.annotations,
        tlsSecretName: o.tlsSecret ?? current?.tlsSecretName,
        controller: {
          ...current?.controller,
          ...(o.ingressControllerNamespace !== undefined && {
            namespace: o.ingressControllerNamespace,
          }),
        },
      };
    }
  }
  const exposeOnly = (
    what: 'gateway' | 'ingress',
    keys: readonly (keyof SynthOverrides)[],
    variables: string,
  ) => {
    if (kind !== what && keys.some((key) => o[key] !== undefined)) {
      problems.push(
        `${variables} only apply when the API is exposed through ${what === 'gateway' ? 'a Gateway' : 'an Ingress'} (K8S_EXPOSE=${what})`,
      );
    }
  };
  exposeOnly(
    'gateway',
    ['gatewayName', 'gatewayNamespace', 'gatewaySection', 'gatewayProxyNamespace'],
    'K8S_GATEWAY_*',
  );
  exposeOnly(
    'ingress',
    ['ingressClass', 'ingressAnnotations', 'ingressControllerNamespace', 'tlsSecret'],
    'K8S_INGRESS_* and K8S_TLS_SECRET',
  );

  let secret = settings.secret;
  const source = o.secretSource ?? secret?.source ?? 'manual';
  if (source === 'external-secrets') {
    const current = secret?.source === 'external-secrets' ? secret : undefined;
    const store = o.secretStore ?? current?.store;
    const remoteKey = o.secretRemoteKey ?? current?.remoteKey;
    if (!store?.name || !remoteKey?.trim()) {
      problems.push(
        'secret: external-secrets needs a store and a remote key (K8S_SECRET_STORE and K8S_SECRET_REMOTE_KEY)',
      );
    }
    secret = {
      source,
      store: store ?? { kind: 'ClusterSecretStore', name: '' },
      remoteKey: remoteKey ?? '',
      refreshInterval: current?.refreshInterval,
    };
  } else if (source === 'sealed-secrets') {
    const current = secret?.source === 'sealed-secrets' ? secret : undefined;
    const encryptedData = o.sealedSecrets ?? current?.encryptedData;
    if (!encryptedData) {
      problems.push('secret: sealed-secrets needs the encrypted values (K8S_SEALED_SECRETS_FILE)');
    }
    secret = { source, encryptedData: encryptedData ?? {} };
  } else {
    secret = { source };
  }
  if (source !== 'external-secrets' && (o.secretStore || o.secretRemoteKey !== undefined)) {
    problems.push(
      'K8S_SECRET_STORE and K8S_SECRET_REMOTE_KEY only apply with K8S_SECRETS=external-secrets',
    );
  }
  if (source !== 'sealed-secrets' && o.sealedSecrets) {
    problems.push('K8S_SEALED_SECRETS_FILE only applies with K8S_SECRETS=sealed-secrets');
  }

  const monitoring = settings.monitoring;
  const prometheusOperator =
    o.prometheusRelease === undefined
      ? monitoring?.prometheusOperator
      : o.prometheusRelease === 'none'
        ? undefined
        : { ...monitoring?.prometheusOperator, releaseLabel: o.prometheusRelease };

  return {
    ...settings,
    namespace: o.namespace ?? settings.namespace,
    image,
    expose,
    secret,
    monitoring: {
      ...monitoring,
      namespace: o.monitoringNamespace ?? monitoring?.namespace,
      prometheusOperator,
    },
  };
}
