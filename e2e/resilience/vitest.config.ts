import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run test:resilience`: fault tests on real server processes and a real PostgreSQL.
// No globalSetup: each file starts the PostgreSQL it stops and starts. Files run one at a time
// (they load a 2-core machine and measure timings), with long timeouts for process start-up.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['e2e/resilience/**/*.test.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
