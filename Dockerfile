# The backend's production image. Two build stages, one small runtime stage:
#   build      npm ci with every dependency, then tsc → backend/dist
#   prod-deps  npm ci --omit=dev: only what the compiled backend imports
#   runtime    node + package.json + production node_modules + backend/dist + backend/migrations
# Rebuilds stay fast: each stage copies the dependency manifests and installs before any source.

# One place for the base image: Node 24, Debian-based (bookworm) rather than Alpine. A build
# argument so tests can build on a stand-in under a name of its own, never shadowing the real one.
ARG NODE_IMAGE=node:24-bookworm-slim
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: tsc needs none (they fetch esbuild and PostgreSQL binaries for dev tools).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY backend/src ./backend/src
RUN npm run build

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# What this build calls itself (health answers, app_info): `--build-arg APP_VERSION=$(git describe)`.
# Empty means package.json's version.
ARG APP_VERSION=
ENV NODE_ENV=production APP_VERSION=${APP_VERSION}
WORKDIR /app
# Everything stays owned by root and read-only to the app's user: it can change neither its code
# nor its dependencies, even where the root file system is writable.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
COPY backend/migrations ./backend/migrations
COPY --from=build /app/backend/dist ./backend/dist
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd (1000 = node).
USER 1000:1000
EXPOSE 3000 9464
# Readiness (database reachable, migrations applied, not shutting down), with node's own fetch:
# the image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself as PID 1 in exec form, so SIGTERM from `docker stop` or the kubelet reaches the app's
# drain logic (`npm start` would swallow it).
CMD ["node", "backend/dist/main.js"]
