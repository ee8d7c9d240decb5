import type { Environment } from './environment.ts';
import { backendNames, requiredSecretKeys } from './names.ts';
import { exactMinorPostgresImage } from './postgres-image.ts';

/**
 * The rules a reviewer would otherwise have to remember, over a resolved environment, and the
 * placeholders synth warns about. The connection and memory budgets are checked against the
 * synthesized StatefulSet instead (environment-app.ts).
 */

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsSubdomain =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A registry host (with an optional port) and path components, as `docker pull` reads them. */
const imageRepository =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const qualifiedName =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const goDuration = /^(\d+h)?(\d+m)?(\d+s)?$/;

/** Rules a reviewer would otherwise have to remember. The connection and memory budgets are
 * checked separately, against the synthesized StatefulSet (see environment-app.ts). */
export function environmentProblems(env: Environment): string[] {
  const problems: string[] = [];
  const name = (what: string, value: string, pattern = dnsLabel) => {
    if (!pattern.test(value)) problems.push(`${what} "${value}" is not a valid Kubernetes name`);
  };
  name('namespace', env.namespace);
  name('monitoring.namespace', env.monitoring.namespace);

  const { tag, repository, pullSecrets } = env.image;
  if (tag.trim() === '') {
    problems.push('image tag is empty (set image.tag or IMAGE_TAG to an immutable tag)');
  } else if (tag.toLowerCase() === 'latest') {
    problems.push(`image tag "${tag}" is mutable: pin a version so every pod runs the same code`);
  } else if (!/^\w[\w.-]{0,127}$/.test(tag)) {
    problems.push(`image tag "${tag}" is not a valid image tag`);
  }
  if (!imageRepository.test(repository)) {
    problems.push(
      `image repository "${repository}" is not an image name such as ghcr.io/acme/tasks-backend (no tag: IMAGE_TAG sets it)`,
    );
  }
  for (const secret of pullSecrets) name('image pull secret', secret, dnsSubdomain);

  const { autoscaling, resources, shutdownDelayMs } = env.backend;
  if (
    autoscaling &&
    (autoscaling.minReplicas < 1 || autoscaling.maxReplicas < autoscaling.minReplicas)
  ) {
    problems.push(
      `autoscaling bounds ${autoscaling.minReplicas}..${autoscaling.maxReplicas} are not 1 <= min <= max`,
    );
  }
  if (env.backend.replicas < 1) problems.push('backend.replicas must be at least 1');
  if (env.backend.maxSurge < 1) {
    // maxUnavailable is 0, so a rollout with no surge could never make progress.
    problems.push('backend.maxSurge must be at least 1 because maxUnavailable is 0');
  }
  const db = env.database;
  for (const [what, r] of [
    ['backend', resources],
    ['database', db.mode === 'in-cluster' ? db.resources : undefined],
    ['database.backup', db.mode === 'in-cluster' ? db.backup?.resources : undefined],
  ] as const) {
    if (!r) continue;
    if (r.cpuRequestMillis > r.cpuLimitMillis || r.memoryRequestMiB > r.memoryLimitMiB) {
      problems.push(`${what} resources: a request is above its limit`);
    }
  }
  const { readinessPeriodSeconds } = backendNames;
  if (shutdownDelayMs < readinessPeriodSeconds * 1000) {
    // Endpoint removal races SIGTERM; serving on for one readiness period covers the race.
    problems.push(
      `backend.shutdownDelayMs ${shutdownDelayMs} is shorter than the readiness period (${readinessPeriodSeconds * 1000} ms)`,
    );
  }
  if (env.backend.shutdownTimeoutMs < 0)
    problems.push('backend.shutdownTimeoutMs must not be negative');

  if (db.mode === 'external' && !isCidr(db.cidr)) {
    problems.push(`database.cidr "${db.cidr}" is not an IPv4 CIDR such as 10.0.0.5/32`);
  }
  if (db.mode === 'in-cluster') {
    if (db.image !== '' && !exactMinorPostgresImage.test(db.image)) {
      problems.push(
        `database.image "${db.image}" is not pinned to an exact minor such as postgres:16.14-bookworm`,
      );
    }
    if (db.backup && (!Number.isInteger(db.backup.keep) || db.backup.keep < 1)) {
      problems.push(
        `database.backup.keep ${db.backup.keep} must be a whole number of dumps, at least 1`,
      );
    }
  }

  const expose = env.expose;
  if (expose) {
    if (!dnsSubdomain.test(expose.host)) {
      problems.push(`host "${expose.host}" is not a DNS name such as tasks.acme.io`);
    }
    name(
      `${expose.kind === 'gateway' ? 'gateway proxies' : 'ingress controller'} namespace`,
      expose.edge.namespace,
    );
    for (const [key, value] of Object.entries(expose.edge.podLabels)) {
      if (!qualifiedName.test(key) || !labelValue.test(value)) {
        problems.push(`edge pod label ${key}=${value} is not a valid label`);
      }
    }
    // An empty gateway name or namespace was already reported as missing.
    if (expose.kind === 'gateway' && expose.gateway.name && expose.gateway.namespace) {
      name('gateway name', expose.gateway.name, dnsSubdomain);
      name('gateway namespace', expose.gateway.namespace);
      if (expose.gateway.sectionName !== undefined) {
        name('gateway section', expose.gateway.sectionName, dnsSubdomain);
      }
    }
    if (expose.kind === 'ingress') {
      if (expose.className !== undefined) name('ingress class', expose.className, dnsSubdomain);
      if (expose.tlsSecretName !== undefined)
        name('TLS secret', expose.tlsSecretName, dnsSubdomain);
      for (const key of Object.keys(expose.annotations)) {
        if (!qualifiedName.test(key))
          problems.push(`ingress annotation "${key}" is not a valid key`);
      }
    }
  }

  const secret = env.secret;
  // An empty store or remote key was already reported as missing.
  if (secret.source === 'external-secrets' && secret.store.name && secret.remoteKey) {
    name('secret store', secret.store.name, dnsSubdomain);
    if (!goDuration.test(secret.refreshInterval) || secret.refreshInterval === '') {
      problems.push(
        `secret refreshInterval "${secret.refreshInterval}" is not a duration such as 1h`,
      );
    }
  }
  if (secret.source === 'sealed-secrets') {
    const expected = requiredSecretKeys(db.mode);
    const given = Object.keys(secret.encryptedData);
    const missing = expected.filter((key) => !given.includes(key));
    const extra = given.filter((key) => !expected.includes(key));
    if (missing.length > 0 || extra.length > 0) {
      problems.push(
        `sealed secret keys: expected exactly ${expected.join(', ')}` +
          (missing.length > 0 ? `; missing ${missing.join(', ')}` : '') +
          (extra.length > 0 ? `; unexpected ${extra.join(', ')}` : ''),
      );
    }
    for (const [key, value] of Object.entries(secret.encryptedData)) {
      // kubeseal --raw prints base64 of the sealed value; plain text here would be a leaked secret.
      if (!/^[A-Za-z0-9+/]{40,}={0,2}$/.test(value)) {
        problems.push(`sealed secret ${key} does not look like kubeseal --raw output (base64)`);
      }
    }
  }
  return problems;
}

function isCidr(value: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (!match) return false;
  const [, a, b, c, d, bits] = match.map(Number);
  return (
    [a, b, c, d].every((octet) => octet !== undefined && octet <= 255) &&
    bits !== undefined &&
    bits <= 32
  );
}

/**
 * Values copied from the examples that no real cluster should run with, each with the variable that
 * replaces it. Synth warns about each; strict mode (SYNTH_STRICT=true, for CI) refuses them.
 */
export function placeholders(env: Environment): string[] {
  const found: string[] = [];
  const example = /(^|[./-])example[.-](com|org|net)\b|^ghcr\.io\/example\//;
  if (example.test(env.image.repository)) {
    found.push(`image repository ${env.image.repository} (set IMAGE_REPOSITORY)`);
  }
  if (env.expose && example.test(env.expose.host)) {
    found.push(`host ${env.expose.host} (set K8S_HOST)`);
  }
  if (
    env.expose?.kind === 'ingress' &&
    env.expose.tlsSecretName &&
    example.test(env.expose.tlsSecretName)
  ) {
    found.push(`TLS secret ${env.expose.tlsSecretName} (set K8S_TLS_SECRET)`);
  }
  return found.map((what) => `environment "${env.name}": placeholder ${what}`);
}
