import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run test:prometheus`: the backend, Debian's postgres_exporter and node-exporter (serving the
// real backup script's status file) and a real Prometheus on loopback, plus promtool. No
// globalSetup: the test starts its own PostgreSQL 16 (and a 15 for the backup script's pg_dump).
// Long timeouts: a cold run installs Debian's packages first.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['e2e/prometheus/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
