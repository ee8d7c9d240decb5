import type { Db } from '../db.ts';
import { AppError } from '../errors.ts';
import * as repo from './repository.ts';

/** Where a client stands against a limit: what the RateLimit response headers report. */
export interface RateLimitState {
  /** The policy's name, as in `RateLimit-Policy: "auth";q=10;w=60`. */
  readonly policy: string;
  /** Requests allowed per window. */
  readonly limit: number;
  readonly windowSeconds: number;
  /** Requests left in the current window (0 when refused). */
  readonly remaining: number;
  /** Seconds until the window that constrains the client ends. */
  readonly resetSeconds: number;
}

export interface RateLimitPolicy {
  readonly name: string;
  readonly limit: number;
  /** @default 60 */
  readonly windowSeconds?: number;
}

export type RateLimiter = ReturnType<typeof rateLimiter>;

/** A limit of `policy.limit` requests per window for each key, counted in PostgreSQL. */
export function rateLimiter(db: Db, policy: RateLimitPolicy) {
  const windowSeconds = policy.windowSeconds ?? 60;
  return {
    policy: { ...policy, windowSeconds },

    /**
     * Counts one request against `gate` and, while the gate is within its limit, against each of
     * `others`; refuses it (rate-limited, with the state) when any key is over the limit.
     */
    async consume(gate: string, others: readonly string[] = []): Promise<RateLimitState> {
      const counts = await repo.consume(db, gate, others, policy.limit, windowSeconds);
      const over = counts.filter((count) => count.hits > policy.limit);
      // The key with the fewest requests left (the latest to reset among those) constrains.
      const tightest = [...(over.length > 0 ? over : counts)].sort(
        (a, b) => b.hits - a.hits || b.resetSeconds - a.resetSeconds,
      )[0]!;
      const state: RateLimitState = {
        policy: policy.name,
        limit: policy.limit,
        windowSeconds,
        remaining: Math.max(0, policy.limit - tightest.hits),
        resetSeconds: tightest.resetSeconds,
      };
      if (over.length > 0) {
        throw new AppError('rate-limited', `Too many attempts; retry in ${state.resetSeconds} s.`, {
          retryAfterSeconds: state.resetSeconds,
          rateLimit: state,
        });
      }
      return state;
    },
  };
}
