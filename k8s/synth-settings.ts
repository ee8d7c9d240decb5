import { readFileSync } from 'node:fs';
import type { SynthOverrides } from './overrides.ts';

/**
 * The settings CI and operators give at synth time, from environment variables, so nobody edits
 * k8s/environments/*.ts to deploy. The only reader of process.env in k8s/ (main.ts passes it in).
 * Every problem is reported at once; k8s/README.md documents each variable (a test keeps the two in
 * step).
 */

type Parsed = Partial<Record<keyof SynthOverrides, unknown>>;

interface Variable {
  /** One line for the README. */
  readonly doc: string;
  /** Whether it describes one environment (then exactly one may be synthesized). */
  readonly scope: 'build' | 'environment' | 'synth';
  readonly parse: (value: string, set: Parsed, problems: string[]) => void;
}

const word = (key: keyof SynthOverrides) => (value: string, set: Parsed) => {
  set[key] = value;
};

const oneOf =
  <T extends string>(key: keyof SynthOverrides, name: string, values: readonly T[]) =>
  (value: string, set: Parsed, problems: string[]) => {
    if ((values as readonly string[]).includes(value)) set[key] = value;
    else problems.push(`${name}="${value}" is not one of ${values.join(', ')}`);
  };

export const synthVariables = {
  IMAGE_REPOSITORY: {
    scope: 'build',
    doc: 'The backend image without its tag, e.g. `ghcr.io/acme/tasks-backend`.',
    parse: word('imageRepository'),
  },
  IMAGE_TAG: {
    scope: 'build',
    doc: 'The image tag CI just pushed (never `latest`).',
    parse: word('imageTag'),
  },
  IMAGE_PULL_SECRETS: {
    scope: 'build',
    doc: 'Comma-separated `kubernetes.io/dockerconfigjson` Secrets for a private registry.',
    parse: (value, set) => {
      set.imagePullSecrets = value.split(',').map((name) => name.trim());
    },
  },
  SYNTH_ENVIRONMENTS: {
    scope: 'synth',
    doc: 'Comma-separated environments to write (default: all). The `K8S_*` variables need exactly one.',
    parse: () => undefined,
  },
  SYNTH_STRICT: {
    scope: 'synth',
    doc: '`true` refuses placeholders (`example.com` hosts, the `ghcr.io/example` image) instead of warning. For CI.',
    parse: () => undefined,
  },
  K8S_NAMESPACE: { scope: 'environment', doc: 'The namespace.', parse: word('namespace') },
  K8S_EXPOSE: {
    scope: 'environment',
    doc: '`gateway` (an HTTPRoute), `ingress` or `none` (port-forward only).',
    parse: oneOf('expose', 'K8S_EXPOSE', ['gateway', 'ingress', 'none']),
  },
  K8S_HOST: { scope: 'environment', doc: 'The API host name.', parse: word('host') },
  K8S_GATEWAY_NAME: {
    scope: 'environment',
    doc: 'The Gateway the HTTPRoute attaches to.',
    parse: word('gatewayName'),
  },
  K8S_GATEWAY_NAMESPACE: {
    scope: 'environment',
    doc: "The Gateway's namespace.",
    parse: word('gatewayNamespace'),
  },
  K8S_GATEWAY_SECTION: {
    scope: 'environment',
    doc: "The Gateway listener's name (`sectionName`), e.g. `https`.",
    parse: word('gatewaySection'),
  },
  K8S_GATEWAY_PROXY_NAMESPACE: {
    scope: 'environment',
    doc: "Where the Gateway's proxy pods run, if not beside the Gateway (Envoy Gateway: `envoy-gateway-system`).",
    parse: word('gatewayProxyNamespace'),
  },
  K8S_INGRESS_CLASS: {
    scope: 'environment',
    doc: "The Ingress's `ingressClassName`.",
    parse: word('ingressClass'),
  },
  K8S_INGRESS_ANNOTATIONS: {
    scope: 'environment',
    doc: 'A JSON object of Ingress annotations, e.g. `{"cert-manager.io/cluster-issuer":"letsencrypt"}`.',
    parse: (value, set, problems) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        parsed = undefined;
      }
      if (
        !parsed ||
        typeof parsed !== 'object' ||
        Array.isArray(parsed) ||
        !Object.values(parsed).every((v) => typeof v === 'string')
      ) {
        problems.push('K8S_INGRESS_ANNOTATIONS is not a JSON object of strings');
      } else {
        set.ingressAnnotations = parsed;
      }
    },
  },
  K8S_INGRESS_CONTROLLER_NAMESPACE: {
    scope: 'environment',
    doc: "The ingress controller's namespace (admitted to the http port).",
    parse: word('ingressControllerNamespace'),
  },
  K8S_TLS_SECRET: {
    scope: 'environment',
    doc: "The Ingress's `kubernetes.io/tls` Secret.",
    parse: word('tlsSecret'),
  },
  K8S_MONITORING_NAMESPACE: {
    scope: 'environment',
    doc: "Prometheus's namespace (admitted to the metrics ports).",
    parse: word('monitoringNamespace'),
  },
  K8S_PROMETHEUS_RELEASE: {
    scope: 'environment',
    doc: 'The `release` label prometheus-operator selects on, or `none` for annotations only.',
    parse: word('prometheusRelease'),
  },
  K8S_SECRETS: {
    scope: 'environment',
    doc: 'Where `tasks-db` comes from: `manual`, `external-secrets` or `sealed-secrets`.',
    parse: oneOf('secretSource', 'K8S_SECRETS', ['manual', 'external-secrets', 'sealed-secrets']),
  },
  K8S_SECRET_STORE: {
    scope: 'environment',
    doc: 'External Secrets: `ClusterSecretStore/<name>` or `SecretStore/<name>`.',
    parse: (value, set, problems) => {
      const match = /^(ClusterSecretStore|SecretStore)\/(.+)$/.exec(value);
      if (match) set.secretStore = { kind: match[1], name: match[2] };
      else
        problems.push(
          `K8S_SECRET_STORE="${value}" is not ClusterSecretStore/<name> or SecretStore/<name>`,
        );
    },
  },
  K8S_SECRET_REMOTE_KEY: {
    scope: 'environment',
    doc: "External Secrets: the remote secret whose properties are the Secret's keys.",
    parse: word('secretRemoteKey'),
  },
  K8S_SEALED_SECRETS_FILE: {
    scope: 'environment',
    doc: 'Sealed Secrets: a JSON file of key → `kubeseal --raw` output.',
    parse: (value, set, problems) => {
      try {
        const parsed: unknown = JSON.parse(readFileSync(value, 'utf8'));
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
          throw new Error('not a JSON object');
        set.sealedSecrets = parsed;
      } catch (error) {
        problems.push(`K8S_SEALED_SECRETS_FILE ${value}: ${(error as Error).message}`);
      }
    },
  },
  K8S_RESTORE_DUMP: {
    scope: 'environment',
    doc: 'A dump file name (`backup.sh list`): adds `k8s/dist/<env>/restore/`, a Job that restores it.',
    parse: () => undefined,
  },
} as const satisfies Record<string, Variable>;

export type SynthVariable = keyof typeof synthVariables;

export interface SynthSettings {
  /** @default - every environment */
  readonly environments: readonly string[] | undefined;
  readonly strict: boolean;
  readonly overrides: SynthOverrides;
  readonly restoreDump: string | undefined;
}

export class SynthSettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`synth settings are invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'SynthSettingsError';
  }
}

/** Reads the variables above from `vars` (process.env), checking each against the known names. */
export function readSynthSettings(
  vars: Readonly<Record<string, string | undefined>>,
  environmentNames: readonly string[],
): SynthSettings {
  const problems: string[] = [];
  const set: Parsed = {};
  const given = (name: SynthVariable) => vars[name];

  for (const [name, value] of Object.entries(vars)) {
    if (value === undefined) continue;
    const variable = (synthVariables as Record<string, Variable>)[name];
    if (!variable) {
      // A typo (K8S_HOTS) must not synthesize the defaults silently.
      if (name.startsWith('K8S_')) problems.push(`${name} is not a setting synth reads`);
      continue;
    }
    if (value.trim() === '') {
      problems.push(`${name} is set but empty: unset it to keep the environment's value`);
      continue;
    }
    variable.parse(value.trim(), set, problems);
  }

  const selected = given('SYNTH_ENVIRONMENTS')
    ?.split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of selected ?? []) {
    if (!environmentNames.includes(name)) {
      problems.push(
        `SYNTH_ENVIRONMENTS names "${name}", which is not one of ${environmentNames.join(', ')}`,
      );
    }
  }
  const scoped = Object.entries(synthVariables)
    .filter(([name, variable]) => variable.scope === 'environment' && given(name as SynthVariable))
    .map(([name]) => name);
  if (scoped.length > 0 && selected?.length !== 1) {
    problems.push(
      `${scoped.join(', ')} describe one environment: name it with SYNTH_ENVIRONMENTS=<one of ${environmentNames.join(', ')}>`,
    );
  }
  const strict = given('SYNTH_STRICT');
  if (strict !== undefined && !['true', 'false'].includes(strict.trim())) {
    problems.push(`SYNTH_STRICT="${strict}" is not true or false`);
  }
  const restoreDump = given('K8S_RESTORE_DUMP')?.trim();
  if (restoreDump !== undefined && !/^[\w.:+-]+$/.test(restoreDump)) {
    problems.push(
      `K8S_RESTORE_DUMP="${restoreDump}" is not a dump file name as \`backup.sh list\` prints it`,
    );
  }
  if (problems.length > 0) throw new SynthSettingsError(problems);
  return {
    environments: selected,
    strict: strict?.trim() === 'true',
    overrides: set as SynthOverrides,
    restoreDump,
  };
}
