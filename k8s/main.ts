import {
  buildEnvironments,
  folderStream,
  SynthError,
  synthEnvironments,
} from './environment-app.ts';
import { environments } from './environments/index.ts';
import { readSynthSettings, SynthSettingsError } from './synth-settings.ts';

// Wiring only. `npm run synth` (cdk8s synth) sets CDK8S_OUTDIR from cdk8s.yaml's `output`;
// `npm run -s synth:stdout -- <env>[/<folder>]` prints one folder as a single YAML stream instead.
try {
  const settings = readSynthSettings(
    process.env,
    environments.map((e) => e.name),
  );
  const selected = environments.filter(
    (e) => !settings.environments || settings.environments.includes(e.name),
  );
  const options = {
    overrides: settings.overrides,
    restoreDump: settings.restoreDump,
    strict: settings.strict,
  };
  const stdoutIndex = process.argv.indexOf('--stdout');
  if (stdoutIndex >= 0) {
    const [name = '', ...path] = (process.argv[stdoutIndex + 1] ?? '').split('/');
    const output = buildEnvironments(
      selected.filter((e) => e.name === name),
      options,
    )[0];
    if (!output)
      throw new SynthError([`--stdout needs <environment>[/<folder>]; "${name}" is not one`]);
    for (const warning of output.warnings) console.error(`warning: ${warning}`);
    process.stdout.write(folderStream(output, path.join('/')));
  } else {
    const { warnings } = synthEnvironments(selected, {
      ...options,
      outdir: process.env['CDK8S_OUTDIR'] ?? 'k8s/dist',
    });
    for (const warning of warnings) console.warn(`warning: ${warning}`);
  }
} catch (error) {
  // A bug, not a setting: keep the stack.
  if (!(error instanceof SynthError || error instanceof SynthSettingsError)) throw error;
  console.error(`synth failed:\n${error.message}`);
  process.exitCode = 1;
}
