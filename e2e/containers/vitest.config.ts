import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run test:containers`: the Dockerfile, docker-compose.yml and the VPS scripts on a real Docker
// engine. The global setup installs the tools, starts the engine, builds the stand-ins and the
// backend images once; each file then runs a stack of its own, one file at a time (two cores).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['e2e/containers/**/*.test.ts'],
    globalSetup: ['e2e/containers/global-setup.ts'],
    fileParallelism: false,
    // Every step by name in the CI log, passed or not.
    reporters: ['verbose'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
