#!/bin/sh
# Creates the database secrets docker-compose.yml mounts, from one random password:
#   SECRETS_DIR/postgres_password   the password (db creates its role with it; backup reads it)
#   SECRETS_DIR/database_url        postgres://POSTGRES_USER:password@db:5432/POSTGRES_DB (backends)
# POSTGRES_USER, POSTGRES_DB and SECRETS_DIR come from the .env file (defaults tasks, tasks,
# ./secrets, relative to the directory of docker-compose.yml). Refuses to overwrite existing files:
# the database keeps the password it was created with.
#
# Usage: sh vps/init-secrets.sh [ENV_FILE]      (default: .env next to docker-compose.yml)
#
# Modes: the directory 0700 (only its owner on the host can list or read it), the files 0444
# (Compose mounts them as they are, and the containers read them as uid 999 and uid 1000).

set -eu

case ${1:-} in
  '') env_file=.env ;;
  /*) env_file=$1 ;;
  *) env_file=$PWD/$1 ;;
esac
# Relative paths (the default .env, SECRETS_DIR) are the project's, as for Compose.
cd "$(dirname "$0")/.."
[ -f "$env_file" ] || {
  echo "init-secrets: $env_file not found (cp .env.example .env first)" >&2
  exit 1
}

# One KEY=value per line, as Compose reads .env; the last one wins, as in Compose.
setting() {
  value=$(sed -n "s/^$1=//p" "$env_file" | tail -n 1)
  printf '%s\n' "${value:-$2}"
}

user=$(setting POSTGRES_USER tasks)
database=$(setting POSTGRES_DB tasks)
dir=$(setting SECRETS_DIR ./secrets)
# Letters, digits and _ only: they are written into a URL unencoded.
for name in "$user" "$database"; do
  case $name in
    '' | *[!A-Za-z0-9_]*)
      echo "init-secrets: POSTGRES_USER and POSTGRES_DB must be letters, digits or _ (got '$name')" >&2
      exit 1
      ;;
  esac
done

for file in "$dir/postgres_password" "$dir/database_url"; do
  if [ -e "$file" ]; then
    echo "init-secrets: $file exists; refusing to overwrite it (the database keeps its first password)" >&2
    exit 1
  fi
done

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
# 24 random bytes as hex: URL-safe, and needs nothing but od.
password=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
[ ${#password} -eq 48 ] || {
  echo 'init-secrets: could not read 24 random bytes' >&2
  exit 1
}
printf '%s' "$password" >"$dir/postgres_password"
printf 'postgres://%s:%s@db:5432/%s' "$user" "$password" "$database" >"$dir/database_url"
chmod 0444 "$dir/postgres_password" "$dir/database_url"
echo "init-secrets: wrote $dir/postgres_password and $dir/database_url"
