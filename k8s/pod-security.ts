import * as kplus from 'cdk8s-plus-28';
import type { ContainerResources } from './environment.ts';

const { k8s } = kplus;

/**
 * The Pod Security "restricted" profile as the low-level (kplus.k8s.Kube*) objects spell it, for
 * the charts that cannot use cdk8s-plus's workload constructs. k8s/test/policy.test.ts checks every
 * pod of every chart against the profile, whichever way it was built.
 */

export function restrictedPodSecurity(uid: number, gid: number): kplus.k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    // Volumes (and Secret files) become the group's, so the user can read and write them.
    fsGroup: gid,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export function restrictedContainerSecurity(uid: number, gid: number): kplus.k8s.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Requests and limits, ephemeral storage included (it covers emptyDirs on disk and logs). */
export function kubeResources(
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
