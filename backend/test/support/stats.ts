/** The nearest-rank percentile of `values` (p from 0 to 1); NaN for no values. */
export function percentile(values: Iterable<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function median(values: Iterable<number>): number {
  return percentile(values, 0.5);
}
