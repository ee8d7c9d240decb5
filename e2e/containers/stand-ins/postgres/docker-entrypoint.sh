#!/usr/bin/env bash
# The parts of the official postgres image's entrypoint this project depends on: create the cluster
# on first start from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (or their _FILE variants),
# then run postgres as uid 999.
set -Eeuo pipefail

# As the official image's file_env: VAR or VAR_FILE (a mounted secret), never both.
file_env() {
  local var="$1" file_var="${1}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo >&2 "error: both $var and $file_var are set (but are exclusive)"
    exit 1
  fi
  if [ -n "${!file_var:-}" ]; then
    export "$var"="$(< "${!file_var}")"
    unset "$file_var"
  fi
}

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi
if [ "$1" != 'postgres' ]; then
  exec "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER
file_env POSTGRES_DB

if [ "$(id -u)" = '0' ]; then
  # A fresh named volume belongs to root: hand it to postgres, then drop root for good.
  mkdir -p "$PGDATA" /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo >&2 'error: database is uninitialized and POSTGRES_PASSWORD is not set'
    exit 1
  fi
  export POSTGRES_USER="${POSTGRES_USER:-postgres}"
  export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA"
  printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\nunix_socket_directories = '/var/run/postgresql'\n" >>"$PGDATA/postgresql.conf"

  # As the official image does: a temporary server on the socket only, so nothing on the network
  # (and no `pg_isready -h 127.0.0.1`) sees the database before it is ready.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$POSTGRES_DB" != 'postgres' ]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname postgres \
      --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    # shellcheck source=/dev/null
    case "$f" in
      *.sh) echo "running $f"; . "$f" ;;
      *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$POSTGRES_DB" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo 'PostgreSQL init process complete; ready for start up.'
fi

exec "$@"
