import { writeFileSync } from 'node:fs';
import { renderRulesFile, rulesFiles } from './alerts.ts';

/**
 * Writes monitoring/prometheus/alerts.yml and alerts.kubernetes.yml from monitoring/alerts.ts. Run it
 * after changing a rule: `npx tsx monitoring/generate.ts`. monitoring/test/alerts.test.ts fails while
 * a file is stale.
 */
for (const which of ['compose', 'kubernetes'] as const) {
  const url = new URL(`./prometheus/${rulesFiles[which].file}`, import.meta.url);
  writeFileSync(url, renderRulesFile(which));
  console.log(`wrote ${url.pathname}`);
}
