import type { Fixture } from './database.ts';

/**
 * The requests the benchmark sends, the same to the backend and to every baseline, and the answer
 * each must give.
 */

export const listLimit = 20;
export const benchTaskTitle = 'Benchmark task';

export type ScenarioName = 'get-by-id' | 'list' | 'create' | 'health';

export interface Scenario {
  name: ScenarioName;
  label: string;
  method: 'GET' | 'POST';
  path: (f: Fixture) => string;
  body?: string;
  auth: boolean;
  expect: number;
}

export const scenarios: readonly Scenario[] = [
  {
    name: 'get-by-id',
    label: 'GET /api/v1/tasks/:id',
    method: 'GET',
    path: (f) => `/api/v1/tasks/${f.taskId}`,
    auth: true,
    expect: 200,
  },
  {
    name: 'list',
    label: `GET /api/v1/tasks?limit=${listLimit}`,
    method: 'GET',
    path: () => `/api/v1/tasks?limit=${listLimit}`,
    auth: true,
    expect: 200,
  },
  {
    name: 'create',
    label: 'POST /api/v1/tasks',
    method: 'POST',
    path: () => '/api/v1/tasks',
    body: JSON.stringify({ title: benchTaskTitle }),
    auth: true,
    expect: 201,
  },
  {
    name: 'health',
    label: 'GET /api/health/ready',
    method: 'GET',
    path: () => '/api/health/ready',
    auth: false,
    expect: 200,
  },
];

/** The scenarios `--only` names, in their usual order; exits 2 when it names none. */
export function selectScenarios(names: readonly string[]): Scenario[] {
  const active = scenarios.filter((s) => names.includes(s.name));
  if (active.length === 0) {
    console.error(`--only names none of: ${scenarios.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  return active;
}

export function headersFor(scenario: Scenario, fixture: Fixture): Record<string, string> {
  const headers: Record<string, string> = {};
  if (scenario.auth) headers['authorization'] = `Bearer ${fixture.token}`;
  if (scenario.body) headers['content-type'] = 'application/json';
  return headers;
}

/**
 * One request per scenario to every target measured under it: the right status, and the same
 * JSON shape from all of them.
 */
export async function checkScenarios(
  targets: readonly {
    server: { name: string; baseUrl: string };
    scenarios?: readonly ScenarioName[];
  }[],
  active: readonly Scenario[],
  fixture: Fixture,
): Promise<void> {
  for (const scenario of active) {
    const shapes = new Map<string, string>();
    for (const { server } of targets.filter(
      (t) => !t.scenarios || t.scenarios.includes(scenario.name),
    )) {
      const res = await fetch(`${server.baseUrl}${scenario.path(fixture)}`, {
        method: scenario.method,
        headers: headersFor(scenario, fixture),
        ...(scenario.body === undefined ? {} : { body: scenario.body }),
      });
      const body: unknown = await res.json();
      if (res.status !== scenario.expect) {
        throw new Error(
          `${server.name} ${scenario.label}: expected ${scenario.expect}, got ${res.status} ${JSON.stringify(body)}`,
        );
      }
      const sample = (body as { items?: unknown[] }).items?.[0] ?? body;
      shapes.set(
        server.name,
        Object.keys(sample as object)
          .sort()
          .join(','),
      );
    }
    if (new Set(shapes.values()).size > 1) {
      const each = [...shapes].map(([name, shape]) => `${name}: ${shape}`);
      throw new Error(`${scenario.label}: the targets answer differently: ${each.join(' | ')}`);
    }
  }
}
