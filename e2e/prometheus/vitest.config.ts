import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run test:prometheus`: the backend process and a real Prometheus on loopback, plus promtool.
// No globalSetup: the test starts a PostgreSQL of its own. Long timeouts: a cold run installs
// Debian's prometheus package first.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['e2e/prometheus/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
