import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { alertNames, alertRuleGroups, renderRulesFile, type RuleGroup } from '../alerts.ts';

const prometheusDir = new URL('../prometheus/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, prometheusDir), 'utf8');

interface PromtoolTests {
  rule_files: string[];
  tests: {
    name: string;
    alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[];
  }[];
}

describe('alert rules (monitoring/alerts.ts)', () => {
  it('the committed monitoring/prometheus/alerts.yml is what `npx tsx monitoring/generate.ts` writes today', () => {
    expect(
      read('alerts.yml'),
      'alerts.yml is stale: run `npx tsx monitoring/generate.ts` and commit the result',
    ).toBe(renderRulesFile());
  });

  it('the file is a plain Prometheus rules file with the same rules', () => {
    const file = parse(read('alerts.yml')) as { groups: RuleGroup[] };
    expect(file).toEqual({ groups: alertRuleGroups() });
  });

  it('covers target down, 5xx ratio, p95 latency, pool exhausted, readiness, event-loop lag and restarts', () => {
    const exprs = alertRuleGroups().flatMap((g) => g.rules.map((r) => `${r.alert}: ${r.expr}`));
    for (const needle of [
      /TasksBackendDown: up\{/,
      /TasksBackendHighErrorRate: [\s\S]*status_code=~"5\.\."/,
      /TasksBackendHighLatency: histogram_quantile\(0\.95,[\s\S]*http_request_duration_seconds_bucket/,
      /TasksBackendDbPoolExhausted: [\s\S]*db_pool_waiting_clients/,
      /TasksBackendNotReady: [\s\S]*route=~"\/api\/health\|\/api\/health\/ready", status_code="503"/,
      /TasksBackendEventLoopLag: nodejs_eventloop_lag_p99_seconds/,
      /TasksBackendRestarting: changes\(process_start_time_seconds/,
    ]) {
      expect(
        exprs.some((e) => needle.test(e)),
        String(needle),
      ).toBe(true);
    }
  });

  it('every rule has a unique name, a severity and summary, description and runbook annotations', () => {
    const names = alertNames();
    expect(new Set(names).size).toBe(names.length);
    for (const rule of alertRuleGroups().flatMap((g) => g.rules)) {
      expect(rule.alert).toMatch(/^TasksBackend[A-Z]\w+$/);
      expect(['critical', 'warning']).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length, rule.alert).toBeGreaterThan(10);
      expect(rule.annotations.description.length, rule.alert).toBeGreaterThan(20);
      expect(rule.annotations.runbook.length, rule.alert).toBeGreaterThan(20);
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
    }
  });

  it('the selector option reaches every series selector of every rule', () => {
    const scoped = alertRuleGroups({ selector: 'job="x", namespace="y"' });
    for (const rule of scoped.flatMap((g) => g.rules)) {
      expect(rule.expr, rule.alert).not.toContain('tasks-backend');
      for (const selector of rule.expr.match(/\{[^}]*\}/g) ?? []) {
        expect(selector, rule.alert).toMatch(/^\{job="x", namespace="y"/);
      }
    }
  });

  it('the promtool unit tests load alerts.yml and test every alert firing and staying silent', () => {
    const file = parse(read('alerts.test.yml')) as PromtoolTests;
    expect(file.rule_files).toEqual(['alerts.yml']);
    const cases = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    const missing = alertNames().flatMap((name) => {
      const own = cases.filter((c) => c.alertname === name);
      return [
        ...(own.some((c) => c.exp_alerts.length > 0) ? [] : [`${name}: no case where it fires`]),
        ...(own.some((c) => c.exp_alerts.length === 0) ? [] : [`${name}: no silent case`]),
      ];
    });
    expect(missing).toEqual([]);
  });
});
