import { writeFileSync } from 'node:fs';
import { renderRulesFile } from './alerts.ts';

/**
 * Writes monitoring/prometheus/alerts.yml from monitoring/alerts.ts. Run it after changing a rule:
 * `npx tsx monitoring/generate.ts`. monitoring/test/alerts.test.ts fails while the file is stale.
 */
const rulesFileUrl = new URL('./prometheus/alerts.yml', import.meta.url);

writeFileSync(rulesFileUrl, renderRulesFile());
console.log(`wrote ${rulesFileUrl.pathname}`);
