/**
 * A fixed-window counter per key, in this process's memory: with several replicas each one
 * counts on its own, so the effective limit is per replica (documented in the README).
 * Memory is bounded: expired windows are swept at most once per window, and past `maxKeys`
 * live keys the limiter forgets everything (failing open beats running out of memory).
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private lastSweep: number;

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {
    this.lastSweep = now();
  }

  /**
   * Counts a hit for each key in order, stopping at the first one over its limit (so a blocked
   * address cannot fill memory with new emails). Returns 0 when allowed, else the seconds until
   * a retry can pass.
   */
  hit(keys: readonly string[]): number {
    const now = this.now();
    this.sweep(now);
    for (const key of keys) {
      let window = this.windows.get(key);
      if (!window || now - window.start >= this.windowMs) {
        window = { start: now, count: 0 };
        this.windows.set(key, window);
      }
      window.count += 1;
      if (window.count > this.limit) {
        return Math.max(1, Math.ceil((window.start + this.windowMs - now) / 1000));
      }
    }
    return 0;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs && this.windows.size <= this.maxKeys) return;
    this.lastSweep = now;
    for (const [key, window] of this.windows) {
      if (now - window.start >= this.windowMs) this.windows.delete(key);
    }
    if (this.windows.size > this.maxKeys) this.windows.clear();
  }

  /** Live keys, for tests. */
  get size(): number {
    return this.windows.size;
  }
}
