/**
 * Waiting for a condition, the one way every test, e2e suite and benchmark here does it: poll with
 * a deadline, never sleep a fixed time and hope.
 */

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Thrown from a probe when waiting longer cannot help (the process under test exited). */
export class GiveUp extends Error {
  override name = 'GiveUp';
}

export interface WaitOptions {
  timeoutMs: number;
  /** Pause between attempts. @default 100 */
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and returns that.
 * A probe that throws counts as "not yet" (its message is kept for the timeout error), except
 * GiveUp, which ends the wait at once.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs, intervalMs = 100 }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last = 'not yet';
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    }
    await sleep(intervalMs);
  }
}

/** Like waitFor, but returns how many milliseconds it took (for figures a test reports). */
export async function timeUntil(
  what: string,
  probe: () => unknown,
  options: WaitOptions,
): Promise<number> {
  const started = performance.now();
  await waitFor(what, async () => ((await probe()) ? true : undefined), options);
  return Math.round(performance.now() - started);
}
