import { it, type TestContext } from 'vitest';

/**
 * Scenario steps that build on each other: once one fails, the later ones are reported as skipped
 * (naming the failed step) instead of failing for a reason that is not theirs.
 */
export function scenario() {
  let failedStep: string | undefined;
  return function step(name: string, body: () => Promise<void>, timeoutMs?: number) {
    it(
      name,
      async (context: TestContext) => {
        if (failedStep) context.skip(`an earlier step failed: ${failedStep}`);
        try {
          await body();
        } catch (error) {
          failedStep = name;
          throw error;
        }
      },
      timeoutMs,
    );
  };
}
