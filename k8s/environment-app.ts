import { join } from 'node:path';
import { App, YamlOutputType } from 'cdk8s';
import { BackendChart } from './backend-chart.ts';
import {
  connectionBudgetProblem,
  maxConnectionsFromStatefulSet,
  type StatefulSetArgs,
} from './connection-budget.ts';
import {
  EnvironmentError,
  resolveEnvironment,
  type EnvironmentSettings,
  type SynthOverrides,
} from './environment.ts';
import { MonitoringChart } from './monitoring-chart.ts';
import { NamespaceChart } from './namespace-chart.ts';
import { PostgresChart } from './postgres-chart.ts';

/**
 * One cdk8s App per environment, so each lands in its own folder. Chart dependencies make cdk8s
 * prefix the files 0000-, 0001-, ... in apply order: the Namespace first.
 */
export function createEnvironmentApp(
  settings: EnvironmentSettings,
  options: { readonly outdir: string; readonly overrides?: SynthOverrides },
): App {
  const env = resolveEnvironment(settings, options.overrides);
  const app = new App({ outdir: options.outdir, yamlOutputType: YamlOutputType.FILE_PER_CHART });

  const namespace = new NamespaceChart(app, 'namespace', { env });
  const postgres =
    env.database.mode === 'in-cluster'
      ? new PostgresChart(app, 'postgres', { env, database: env.database })
      : undefined;
  const backend = new BackendChart(app, 'backend', { env });
  if (postgres) postgres.addDependency(namespace);
  backend.addDependency(postgres ?? namespace);
  if (env.monitoring.prometheusOperator) {
    const monitoring = new MonitoringChart(app, 'monitoring', {
      env,
      releaseLabel: env.monitoring.prometheusOperator.releaseLabel,
    });
    monitoring.addDependency(backend);
  }

  // Checked at synth against the StatefulSet as synthesized, not against the settings it came from.
  backend.node.addValidation({
    validate: () => {
      const maxConnections = postgres
        ? maxConnectionsFromStatefulSet(postgres.statefulSet.toJson() as StatefulSetArgs)
        : env.database.maxConnections;
      if (maxConnections === undefined) {
        return [
          'the PostgreSQL StatefulSet does not set -c max_connections=N, so the connection budget cannot be checked',
        ];
      }
      const problem = connectionBudgetProblem({
        maxReplicas: env.backend.autoscaling?.maxReplicas ?? env.backend.replicas,
        maxSurge: env.backend.maxSurge,
        poolMax: env.backend.poolMax,
        reservedConnections: env.database.reservedConnections,
        maxConnections,
        maxConnectionsSource: postgres
          ? 'from the StatefulSet args'
          : 'as declared for the external database',
      });
      return problem ? [`environment "${env.name}": ${problem}`] : [];
    },
  });
  return app;
}

/** Every environment's problems, reported together so one synth run shows all of them. */
export class SynthError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'SynthError';
  }
}

/**
 * Builds and validates every environment before writing any, so a bad one leaves no half-written
 * output behind; then writes each to <outdir>/<name>/. Returns the folders written.
 */
export function synthEnvironments(
  environments: readonly EnvironmentSettings[],
  options: { readonly outdir: string; readonly overrides?: SynthOverrides },
): string[] {
  const apps: App[] = [];
  const problems: string[] = [];
  for (const settings of environments) {
    try {
      const app = createEnvironmentApp(settings, {
        ...options,
        outdir: join(options.outdir, settings.name),
      });
      app.synthYaml(); // runs the validations without writing
      apps.push(app);
    } catch (error) {
      if (!isConfigurationError(error)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) throw new SynthError(problems);
  for (const app of apps) app.synth();
  return apps.map((app) => app.outdir);
}

function isConfigurationError(error: unknown): error is Error {
  // cdk8s reports failed construct validations (the connection budget) with this prefix.
  return (
    error instanceof EnvironmentError ||
    (error instanceof Error && error.message.startsWith('Validation failed'))
  );
}
