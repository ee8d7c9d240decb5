import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../src/auth/rate-limit.ts';

describe('RateLimiter', () => {
  it('allows `limit` hits per window and then says how long to wait', () => {
    let now = 0;
    const limiter = new RateLimiter(2, 60_000, () => now);
    expect(limiter.hit(['a'])).toBe(0);
    expect(limiter.hit(['a'])).toBe(0);
    now = 15_000;
    expect(limiter.hit(['a'])).toBe(45);
    now = 60_000;
    expect(limiter.hit(['a'])).toBe(0);
  });

  it('when the first key is over its limit, then later keys are neither counted nor stored', () => {
    let now = 0;
    const limiter = new RateLimiter(1, 60_000, () => now);
    limiter.hit(['ip:1', 'email:first']);
    for (let i = 0; i < 1000; i++) expect(limiter.hit(['ip:1', `email:${i}`])).toBeGreaterThan(0);
    expect(limiter.size).toBe(2);
    now = 60_000;
    expect(limiter.hit(['ip:1', 'email:first'])).toBe(0);
  });

  it('keeps memory bounded: expired windows are swept, and past the cap everything is forgotten', () => {
    let now = 0;
    const limiter = new RateLimiter(5, 60_000, () => now, 1000);
    for (let i = 0; i < 900; i++) limiter.hit([`ip:${i}`]);
    now = 61_000;
    limiter.hit(['ip:new']);
    expect(limiter.size).toBe(1);
    for (let i = 0; i < 1500; i++) limiter.hit([`ip:burst-${i}`]);
    expect(limiter.size).toBeLessThanOrEqual(1000);
  });
});
