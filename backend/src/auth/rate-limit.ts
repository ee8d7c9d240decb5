/**
 * A fixed-window counter per key, in this process's memory: with several replicas each one
 * counts on its own, so the effective limit is per replica (documented in the README).
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a hit for every key; returns 0 when allowed, else the seconds until a retry can pass. */
  hit(keys: readonly string[]): number {
    const now = this.now();
    if (this.windows.size > 50_000) this.sweep(now);
    let retryAfterMs = 0;
    for (const key of keys) {
      let window = this.windows.get(key);
      if (!window || now - window.start >= this.windowMs) {
        window = { start: now, count: 0 };
        this.windows.set(key, window);
      }
      window.count += 1;
      if (window.count > this.limit) {
        retryAfterMs = Math.max(retryAfterMs, window.start + this.windowMs - now);
      }
    }
    return retryAfterMs === 0 ? 0 : Math.max(1, Math.ceil(retryAfterMs / 1000));
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) {
      if (now - window.start >= this.windowMs) this.windows.delete(key);
    }
  }
}
