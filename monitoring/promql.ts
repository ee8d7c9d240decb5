/**
 * The metric names a PromQL expression reads, so a test can hold them against what the backend
 * really exposes. Not a parser: it removes what cannot be a metric name (strings, label matchers,
 * ranges, grouping clauses, Grafana variables) and keeps the identifiers that are not functions or
 * keywords. Good enough for the expressions in this repository, and tested on the shapes they use.
 */

const keywords = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    // Grafana variables: ${datasource}, $job, $__rate_interval.
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    // Label lists of aggregations and vector matching: `by (le, route)`, `on (instance)`.
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const word = match[0];
    const next = stripped.slice(match.index + word.length).trimStart();
    if (next.startsWith('(')) continue; // a function or aggregation: rate(, sum(, histogram_quantile(
    if (keywords.has(word.toLowerCase())) continue;
    // The tail of a number such as 1e3 or 0x1F.
    if (match.index > 0 && /[\d.]/.test(stripped[match.index - 1]!)) continue;
    names.add(word);
  }
  return [...names];
}
