import { SynthError, synthEnvironments } from './environment-app.ts';
import { environments } from './environments/index.ts';

// Wiring only. `npm run synth` (cdk8s synth) sets CDK8S_OUTDIR from cdk8s.yaml's `output`.
try {
  synthEnvironments(environments, {
    outdir: process.env['CDK8S_OUTDIR'] ?? 'k8s/dist',
    overrides: { imageTag: process.env['IMAGE_TAG'] },
  });
} catch (error) {
  if (!(error instanceof SynthError)) throw error; // a bug, not a setting: keep the stack
  console.error(`synth failed:\n${error.message}`);
  process.exitCode = 1;
}
