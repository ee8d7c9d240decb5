import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { environments } from '../environments/index.ts';
import { production } from '../environments/production.ts';
import { readSynthSettings, SynthSettingsError, synthVariables } from '../synth-settings.ts';
import { find, ofKind, synthesize } from './support/manifests.ts';

const names = environments.map((e) => e.name);
const read = (vars: Record<string, string>) => readSynthSettings(vars, names);
const problemsOf = (vars: Record<string, string>): readonly string[] => {
  try {
    read(vars);
  } catch (error) {
    if (error instanceof SynthSettingsError) return error.problems;
    throw error;
  }
  return [];
};

const dir = mkdtempSync(join(tmpdir(), 'synth-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('synth-time settings from environment variables', () => {
  it('without any, every environment is written with its own values', () => {
    expect(read({ PATH: '/usr/bin', HOME: '/root' })).toEqual({
      environments: undefined,
      strict: false,
      overrides: {},
      restoreDump: undefined,
    });
  });

  it('build settings apply to every environment: repository, tag, pull secrets', () => {
    const settings = read({
      IMAGE_REPOSITORY: 'ghcr.io/acme/tasks-backend',
      IMAGE_TAG: '1.4.2',
      IMAGE_PULL_SECRETS: 'ghcr-pull, mirror-pull',
      SYNTH_STRICT: 'true',
    });
    expect(settings.strict).toBe(true);
    expect(settings.overrides).toEqual({
      imageRepository: 'ghcr.io/acme/tasks-backend',
      imageTag: '1.4.2',
      imagePullSecrets: ['ghcr-pull', 'mirror-pull'],
    });
    const { objects } = synthesize(production, { overrides: settings.overrides });
    const pod = find<any>(objects, 'Deployment', 'tasks-backend').spec.template.spec;
    expect(pod.containers[0].image).toBe('ghcr.io/acme/tasks-backend:1.4.2');
    expect(pod.imagePullSecrets).toEqual([{ name: 'ghcr-pull' }, { name: 'mirror-pull' }]);
  });

  it('environment settings (host, gateway, namespaces, secrets) need exactly one environment named', () => {
    expect(problemsOf({ K8S_HOST: 'tasks.acme.io', K8S_NAMESPACE: 'acme-tasks' })).toEqual([
      'K8S_NAMESPACE, K8S_HOST describe one environment: name it with SYNTH_ENVIRONMENTS=<one of dev, staging, production>',
    ]);
    const settings = read({
      SYNTH_ENVIRONMENTS: 'production',
      K8S_NAMESPACE: 'acme-tasks',
      K8S_HOST: 'tasks.acme.io',
      K8S_GATEWAY_NAME: 'edge',
      K8S_GATEWAY_NAMESPACE: 'infra',
      K8S_GATEWAY_SECTION: 'https-tasks',
      K8S_MONITORING_NAMESPACE: 'observability',
      K8S_PROMETHEUS_RELEASE: 'kps',
    });
    expect(settings.environments).toEqual(['production']);
    const { env, objects } = synthesize(production, { overrides: settings.overrides });
    expect(env.namespace).toBe('acme-tasks');
    expect(find<any>(objects, 'HTTPRoute', 'tasks-backend').spec).toMatchObject({
      hostnames: ['tasks.acme.io'],
      parentRefs: [{ name: 'edge', namespace: 'infra', sectionName: 'https-tasks' }],
    });
    expect(find<any>(objects, 'ServiceMonitor', 'tasks-backend').metadata.labels.release).toBe(
      'kps',
    );
  });

  it('switching production to an Ingress takes its class, annotations, controller namespace and TLS secret', () => {
    const settings = read({
      SYNTH_ENVIRONMENTS: 'production',
      K8S_EXPOSE: 'ingress',
      K8S_HOST: 'tasks.acme.io',
      K8S_INGRESS_CLASS: 'traefik',
      K8S_INGRESS_ANNOTATIONS: '{"cert-manager.io/cluster-issuer":"letsencrypt"}',
      K8S_INGRESS_CONTROLLER_NAMESPACE: 'traefik',
      K8S_TLS_SECRET: 'tasks-acme-io-tls',
    });
    const { objects } = synthesize(production, { overrides: settings.overrides });
    expect(ofKind(objects, 'HTTPRoute')).toEqual([]);
    expect(find<any>(objects, 'Ingress', 'tasks-backend')).toMatchObject({
      metadata: { annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' } },
      spec: {
        ingressClassName: 'traefik',
        tls: [{ hosts: ['tasks.acme.io'], secretName: 'tasks-acme-io-tls' }],
      },
    });
  });

  it('K8S_EXPOSE=none leaves the API unexposed (port-forward only)', () => {
    const settings = read({ SYNTH_ENVIRONMENTS: 'production', K8S_EXPOSE: 'none' });
    const { objects } = synthesize(production, { overrides: settings.overrides });
    expect([...ofKind(objects, 'HTTPRoute'), ...ofKind(objects, 'Ingress')]).toEqual([]);
  });

  it('the secret source: External Secrets from a store, Sealed Secrets from a file of kubeseal output', () => {
    const eso = read({
      SYNTH_ENVIRONMENTS: 'production',
      K8S_SECRETS: 'external-secrets',
      K8S_SECRET_STORE: 'ClusterSecretStore/vault',
      K8S_SECRET_REMOTE_KEY: 'tasks/production/db',
    });
    expect(eso.overrides).toMatchObject({
      secretSource: 'external-secrets',
      secretStore: { kind: 'ClusterSecretStore', name: 'vault' },
    });
    const file = join(dir, 'sealed.json');
    const sealed = Object.fromEntries(
      ['DATABASE_URL', 'POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB'].map((key) => [
        key,
        `AgB${Buffer.alloc(48, key).toString('base64')}`,
      ]),
    );
    writeFileSync(file, JSON.stringify(sealed));
    const settings = read({
      SYNTH_ENVIRONMENTS: 'production',
      K8S_SECRETS: 'sealed-secrets',
      K8S_SEALED_SECRETS_FILE: file,
    });
    const { folder } = synthesize(production, { overrides: settings.overrides });
    const [object] = ofKind<any>(folder('setup'), 'SealedSecret');
    expect(object.spec.encryptedData).toEqual(sealed);
  });

  it('every problem at once: bad values, typos, unknown environments, empty values', () => {
    expect(
      problemsOf({
        SYNTH_ENVIRONMENTS: 'prod',
        SYNTH_STRICT: 'yes',
        IMAGE_TAG: '',
        K8S_EXPOSE: 'loadbalancer',
        K8S_HOTS: 'tasks.acme.io',
        K8S_INGRESS_ANNOTATIONS: '["not", "an object"]',
        K8S_SECRET_STORE: 'vault',
        K8S_SEALED_SECRETS_FILE: join(dir, 'missing.json'),
        K8S_RESTORE_DUMP: '../etc/passwd',
      }),
    ).toEqual([
      "IMAGE_TAG is set but empty: unset it to keep the environment's value",
      'K8S_EXPOSE="loadbalancer" is not one of gateway, ingress, none',
      'K8S_HOTS is not a setting synth reads',
      'K8S_INGRESS_ANNOTATIONS is not a JSON object of strings',
      'K8S_SECRET_STORE="vault" is not ClusterSecretStore/<name> or SecretStore/<name>',
      expect.stringMatching(/^K8S_SEALED_SECRETS_FILE .*missing\.json: ENOENT/),
      'SYNTH_ENVIRONMENTS names "prod", which is not one of dev, staging, production',
      'SYNTH_STRICT="yes" is not true or false',
      'K8S_RESTORE_DUMP="../etc/passwd" is not a dump file name as `backup.sh list` prints it',
    ]);
  });

  it('settings that do not fit the environment are named too, with the settings checks', () => {
    const settings = read({
      SYNTH_ENVIRONMENTS: 'production',
      K8S_EXPOSE: 'gateway',
      K8S_INGRESS_CLASS: 'nginx',
      K8S_HOST: 'Tasks_Acme',
      K8S_SECRETS: 'external-secrets',
      K8S_NAMESPACE: 'Tasks',
      IMAGE_REPOSITORY: 'ghcr.io/acme/tasks-backend:1.0',
    });
    expect(() => synthesize(production, { overrides: settings.overrides })).toThrow(
      [
        'environment "production" is invalid:',
        '  - K8S_INGRESS_* and K8S_TLS_SECRET only apply when the API is exposed through an Ingress (K8S_EXPOSE=ingress)',
        '  - secret: external-secrets needs a store and a remote key (K8S_SECRET_STORE and K8S_SECRET_REMOTE_KEY)',
        '  - namespace "Tasks" is not a valid Kubernetes name',
        '  - image repository "ghcr.io/acme/tasks-backend:1.0" is not an image name such as ghcr.io/acme/tasks-backend (no tag: IMAGE_TAG sets it)',
        '  - host "Tasks_Acme" is not a DNS name such as tasks.acme.io',
      ].join('\n'),
    );
  });

  it('k8s/README.md documents every variable', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const missing = Object.keys(synthVariables).filter((name) => !readme.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
