import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run test:containers`: the Dockerfile and docker-compose.yml on a real Docker engine.
// No globalSetup (it needs no PostgreSQL of its own); one file, steps in order, long timeouts:
// a cold run builds the stand-in base images first.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['e2e/containers/**/*.test.ts'],
    fileParallelism: false,
    // Every step by name in the CI log, passed or not.
    reporters: ['verbose'],
    testTimeout: 300_000,
    hookTimeout: 1_800_000,
  },
});
