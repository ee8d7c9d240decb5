import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['backend/test/**/*.test.ts', 'k8s/test/**/*.test.ts', 'monitoring/test/**/*.test.ts'],
    // One PostgreSQL for the whole run, started once (see backend/test/global-setup.ts).
    globalSetup: ['backend/test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: keep files in parallel but bounded, so timing-sensitive tests stay honest.
    maxWorkers: 2,
  },
});
