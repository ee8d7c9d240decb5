import { readFileSync } from 'node:fs';
import { groupSource, rulesFiles, type MetricSource, type RuleGroup } from './alerts.ts';
import { metricNamesIn } from './promql.ts';

/**
 * Which metric names the alert rules and the dashboard read, and which of them a `/metrics`
 * exposition lacks: a renamed metric would otherwise leave an alert that never fires and an empty
 * panel, silently.
 */

/** Series Prometheus makes itself for every target; the backend never exposes them. */
export const prometheusGeneratedMetrics: ReadonlySet<string> = new Set(['up']);

export const dashboardFile = new URL('./grafana/tasks-backend.json', import.meta.url);

export interface DashboardPanel {
  id?: number;
  type: string;
  title: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: { expr?: string; refId?: string; legendFormat?: string }[];
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
  templating?: { list: { name: string; type: string; query?: unknown }[] };
}

export function loadDashboard(file: URL = dashboardFile): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export interface Query {
  readonly expr: string;
  /** e.g. `alert TasksBackendDown`, `panel "CPU"`, `variable job` */
  readonly where: string;
}

/** Every PromQL expression of the dashboard: panel targets and `label_values(<expr>, label)` variables. */
export function dashboardQueries(dashboard: Dashboard): Query[] {
  const targets = allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      expr: target.expr ?? '',
      where: `panel "${panel.title}"`,
    })),
  );
  const variables = (dashboard.templating?.list ?? []).flatMap((variable) => {
    if (variable.type !== 'query') return [];
    const query =
      typeof variable.query === 'string'
        ? variable.query
        : (variable.query as { query?: string } | undefined)?.query;
    const inner = /^label_values\((.*),\s*\w+\)$/.exec(query ?? '')?.[1];
    return inner ? [{ expr: inner, where: `variable ${variable.name}` }] : [];
  });
  return [...targets, ...variables];
}

/** Every alert of both rules files (compose and Kubernetes), with where its series come from. */
export function alertQueries(): (Query & { readonly source: MetricSource })[] {
  const seen = new Set<string>();
  const groups: RuleGroup[] = [...rulesFiles.compose.groups(), ...rulesFiles.kubernetes.groups()];
  return groups.flatMap((group) =>
    group.rules.flatMap((rule) => {
      const key = `${group.name}/${rule.alert}`;
      if (seen.has(key)) return [];
      seen.add(key);
      return [{ expr: rule.expr, where: `alert ${rule.alert}`, source: groupSource(group.name) }];
    }),
  );
}

/**
 * Metric name -> where it is used, over the alert rules and the dashboard, for one source of series
 * (the dashboard reads the backend's). @default the backend's
 */
export function metricUsage(
  dashboard: Dashboard = loadDashboard(),
  source: MetricSource = 'backend',
): Map<string, string[]> {
  const usage = new Map<string, string[]>();
  const queries = [
    ...alertQueries().filter((q) => q.source === source),
    ...(source === 'backend' ? dashboardQueries(dashboard) : []),
  ];
  for (const { expr, where } of queries) {
    for (const name of metricNamesIn(expr)) usage.set(name, [...(usage.get(name) ?? []), where]);
  }
  return usage;
}

/** The sample names of a text exposition (`http_request_duration_seconds_bucket`, ...). */
export function exposedSampleNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const name = /^([A-Za-z_:][\w:]*)/.exec(line)?.[1];
    if (name) names.add(name);
  }
  return names;
}

/** Used names the exposition does not have, each with where it is used. Empty means all is well. */
export function missingMetrics(
  usage: ReadonlyMap<string, readonly string[]>,
  exposed: ReadonlySet<string>,
): string[] {
  return [...usage]
    .filter(([name]) => !exposed.has(name) && !prometheusGeneratedMetrics.has(name))
    .map(([name, where]) => `${name} (used by ${[...new Set(where)].join(', ')})`);
}
