#!/bin/sh
# Deploys a new backend image with no dropped request: one replica at a time, behind Caddy.
#
#   vps/deploy.sh IMAGE        deploy IMAGE (e.g. tasks-backend:1.4.0, or registry/name:tag; pulled
#                              when it is not on this host)
#   vps/deploy.sh --rollback   deploy the image that served before the current one
#
# The order, and why:
#   1. Migrate with the NEW image, once, while the old replicas serve. Migrations must be
#      expand-only (add, never drop or rename what the old release reads): old and new code share
#      the schema during the roll, and after a rollback. Contract in a later release.
#   2. Replace backend-a, wait until Docker reports it healthy (readiness: database reachable,
#      migrations applied). Caddy checks readiness every second, so it routes to the new replica
#      by then; the old one drained first (readiness 503 for SHUTDOWN_DELAY_MS while still serving).
#   3. The same for backend-b, while backend-a serves.
#   4. Record the image as BACKEND_IMAGE in the .env file (what `docker compose up -d` runs) and in
#      .deploy-history beside it (what --rollback reads).
# If a replica never becomes healthy, every replica already replaced is put back on the previous
# image, one at a time, and the script exits 1: the previous version never stopped serving.
#
# Needs Docker and Compose (v2 `docker compose` or v1 `docker-compose`), nothing else. Run it from
# anywhere; it works in the directory of docker-compose.yml. Environment:
#   ENV_FILE                 the .env file (default: .env next to docker-compose.yml)
#   COMPOSE_PROJECT_NAME, COMPOSE_FILE   as Compose reads them, when you use them
#   DEPLOY_HEALTH_TIMEOUT    seconds a replica may take to become healthy (default 120)

set -eu

case ${ENV_FILE:-} in
  '') env_file=.env ;;
  /*) env_file=$ENV_FILE ;;
  *) env_file=$PWD/$ENV_FILE ;;
esac
cd "$(dirname "$0")/.."
history_file=$(dirname "$env_file")/.deploy-history
lock_dir=$(dirname "$env_file")/.deploy.lock
health_timeout=${DEPLOY_HEALTH_TIMEOUT:-120}
replicas='backend-a backend-b'

log() { printf '%s deploy: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() {
  log "error: $*"
  exit 1
}

if docker compose version >/dev/null 2>&1; then
  compose() { docker compose --env-file "$env_file" "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then
  compose() { docker-compose --env-file "$env_file" "$@"; }
else
  fail 'neither "docker compose" nor "docker-compose" is installed'
fi

# The image compose runs today: BACKEND_IMAGE in the .env file (the last one wins, as in Compose).
current_image() {
  image=$(sed -n 's/^BACKEND_IMAGE=//p' "$env_file" | tail -n 1)
  printf '%s\n' "${image:-tasks-backend:local}"
}

# The image deployed before the current one, from the history (one "time image" line per deploy).
previous_image() {
  [ -f "$history_file" ] || return 0
  awk 'NF >= 2 { images[n++] = $2 } END { if (n >= 2) print images[n - 2] }' "$history_file"
}

container_of() { compose ps -q "$1" 2>/dev/null | head -n 1; }

# "status health restarts image" of a container.
state_of() {
  docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}} {{.Config.Image}}' "$1"
}

# Waits until the replica runs IMAGE and is healthy; fails early on a crash or an unhealthy verdict.
wait_healthy() {
  service=$1
  image=$2
  deadline=$(($(date +%s) + health_timeout))
  while :; do
    id=$(container_of "$service")
    if [ -n "$id" ]; then
      # shellcheck disable=SC2046 # four words, split on purpose
      set -- $(state_of "$id")
      if [ "$4" = "$image" ]; then
        case "$1 $2" in
          'running healthy')
            [ "$3" = 0 ] && return 0
            ;;
          exited* | dead*)
            log "$service ($image) stopped: $(docker logs --tail 5 "$id" 2>&1 | tr '\n' ' ')"
            return 1
            ;;
          *' unhealthy')
            log "$service ($image) is unhealthy"
            return 1
            ;;
        esac
        if [ "$3" != 0 ]; then
          log "$service ($image) crashed and restarted $3 time(s): $(docker logs --tail 5 "$id" 2>&1 | tr '\n' ' ')"
          return 1
        fi
      fi
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$service ($image) not healthy after $health_timeout s"
      return 1
    fi
    sleep 1
  done
}

# Recreates one replica on IMAGE. The old container drains first (compose stops it, then starts the
# new one); the other replica serves meanwhile.
replace() {
  log "$1: $2"
  BACKEND_IMAGE=$2 compose up -d --no-deps --no-build --force-recreate "$1" >/dev/null
}

# The version the replica reports (its health answer), for the log.
served_version() {
  docker exec "$(container_of "$1")" node -e \
    "fetch('http://127.0.0.1:3000/api/health/live').then((r) => r.json()).then((b) => console.log(b.version), () => console.log('?'))" \
    2>/dev/null || echo '?'
}

# BACKEND_IMAGE=IMAGE in the .env file, replaced in place (or appended), atomically.
record() {
  tmp=$env_file.deploy.$$
  awk -v image="$1" '
    /^BACKEND_IMAGE=/ { if (!done) print "BACKEND_IMAGE=" image; done = 1; next }
    { print }
    END { if (!done) print "BACKEND_IMAGE=" image }' "$env_file" >"$tmp"
  chmod "$(stat -c %a "$env_file" 2>/dev/null || echo 600)" "$tmp"
  mv -f "$tmp" "$env_file"
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >>"$history_file"
}

case ${1:-} in
  --rollback)
    [ $# -eq 1 ] || fail 'usage: vps/deploy.sh IMAGE | --rollback'
    target=$(previous_image)
    [ -n "$target" ] || fail "nothing to roll back to: $history_file records fewer than two deploys"
    ;;
  '' | -*) fail 'usage: vps/deploy.sh IMAGE | --rollback' ;;
  *)
    [ $# -eq 1 ] || fail 'usage: vps/deploy.sh IMAGE | --rollback'
    target=$1
    ;;
esac
[ -f "$env_file" ] || fail "$env_file not found"

# One deploy at a time.
mkdir "$lock_dir" 2>/dev/null ||
  fail "another deploy holds $lock_dir (remove it if none is running)"
trap 'rmdir "$lock_dir" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

started=$(date +%s)
old=$(current_image)
log "deploying $target (now serving $old)"

if ! docker image inspect "$target" >/dev/null 2>&1; then
  log "pulling $target"
  docker pull "$target" >/dev/null || fail "$target is neither on this host nor pullable"
fi

# Refuse to start from a broken state: replacing one replica must leave a healthy one serving.
for service in $replicas; do
  id=$(container_of "$service")
  [ -n "$id" ] || fail "$service is not running; start the stack first (docker compose up -d)"
  # shellcheck disable=SC2046 # four words, split on purpose
  set -- $(state_of "$id")
  [ "$1 $2" = 'running healthy' ] ||
    fail "$service is $1/$2; fix it before deploying (a deploy would leave nothing serving)"
done

# The first deploy records what ran before it, so it can be rolled back to.
[ -s "$history_file" ] || printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$old" >"$history_file"

log "1/3 migrations with $target"
BACKEND_IMAGE=$target compose run --rm --no-deps -T backend-a node backend/dist/migrate-cli.js ||
  fail "migrations with $target failed; nothing was replaced, $old still serves"

step=2
done_replicas=''
for service in $replicas; do
  log "$step/3 replacing $service"
  step=$((step + 1))
  if replace "$service" "$target" && wait_healthy "$service" "$target"; then
    log "$service serves $(served_version "$service")"
    done_replicas="$done_replicas $service"
    continue
  fi
  # Back to the previous image: the failed replica first (it serves nothing), then the ones
  # already replaced, one at a time as before.
  log "$target never became healthy on $service; putting $old back"
  for undo in "$service" $done_replicas; do
    if ! { replace "$undo" "$old" && wait_healthy "$undo" "$old"; }; then
      log "$undo did not come back healthy on $old; look at: docker compose logs $undo"
    fi
  done
  fail "deploy of $target failed; $old serves"
done

record "$target"
log "deployed $target in $(($(date +%s) - started)) s (was $old; roll back with: vps/deploy.sh --rollback)"
