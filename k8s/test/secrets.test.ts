import { describe, expect, it } from 'vitest';
import { production } from '../environments/production.ts';
import { staging } from '../environments/staging.ts';
import { ofKind, synthesize } from './support/manifests.ts';
import { optionVariants } from './support/variants.ts';

const variant = (label: string) => {
  const found = optionVariants.find((v) => v.label === label);
  if (!found) throw new Error(`no variant ${label}`);
  return synthesize(found.settings, found.options);
};

describe('the tasks-db Secret from External Secrets or Sealed Secrets', () => {
  it('manual (the default): no object, the README says how to create it', () => {
    const { objects } = synthesize(production);
    expect([...ofKind(objects, 'ExternalSecret'), ...ofKind(objects, 'SealedSecret')]).toEqual([]);
  });

  it('External Secrets: one ExternalSecret in setup/, every key the pods read mapped by name from the remote secret', () => {
    const { folder } = variant('production with External Secrets');
    const [external] = ofKind<any>(folder('setup'), 'ExternalSecret');
    expect(external).toMatchObject({
      apiVersion: 'external-secrets.io/v1',
      metadata: { name: 'tasks-db' },
      spec: {
        secretStoreRef: { kind: 'ClusterSecretStore', name: 'vault' },
        refreshInterval: '1h',
        target: { name: 'tasks-db', creationPolicy: 'Owner', deletionPolicy: 'Retain' },
      },
    });
    expect(external.spec.data).toEqual(
      ['DATABASE_URL', 'POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB'].map((key) => ({
        secretKey: key,
        remoteRef: { key: 'tasks/production/db', property: key },
      })),
    );
    expect(ofKind(folder(''), 'ExternalSecret')).toEqual([]);
  });

  it('External Secrets for an external database: only DATABASE_URL', () => {
    const { folder } = variant('staging with External Secrets (DATABASE_URL only)');
    const [external] = ofKind<any>(folder('setup'), 'ExternalSecret');
    expect(external.spec.data.map((d: { secretKey: string }) => d.secretKey)).toEqual([
      'DATABASE_URL',
    ]);
  });

  it('Sealed Secrets: one SealedSecret in setup/ for this namespace and name', () => {
    const { folder, env } = variant(
      'production with Sealed Secrets, a private registry and a restore',
    );
    const [sealed] = ofKind<any>(folder('setup'), 'SealedSecret');
    expect(Object.keys(sealed.spec.encryptedData).sort()).toEqual([
      'DATABASE_URL',
      'POSTGRES_DB',
      'POSTGRES_PASSWORD',
      'POSTGRES_USER',
    ]);
    expect(sealed.spec.template.metadata).toMatchObject({
      name: 'tasks-db',
      namespace: env.namespace,
    });
  });

  it('when the sealed values miss a key, have one too many or are not kubeseal output, synth names each', () => {
    expect(() =>
      synthesize(staging, {
        overrides: {
          secretSource: 'sealed-secrets',
          sealedSecrets: {
            POSTGRES_PASSWORD: 'AgB'.padEnd(60, 'x'),
            DATABASE_URL: 'postgres://plain',
          },
        },
      }),
    ).toThrow(
      /sealed secret keys: expected exactly DATABASE_URL; unexpected POSTGRES_PASSWORD\n.*sealed secret DATABASE_URL does not look like kubeseal --raw output/,
    );
  });
});
