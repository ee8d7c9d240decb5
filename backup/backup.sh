#!/bin/sh
# tasks-backup: dumps, lists and restores the tasks database. One program for both schedulers: the
# `backup` service of docker-compose.yml and the Kubernetes CronJob, both running it inside the
# database's own postgres image (pg_dump, pg_restore and psql of the server's version).
#
# Usage:
#   backup.sh backup          take a dump now; prints its file name
#   backup.sh list            list the dumps, newest last (name, bytes, UTC time)
#   backup.sh restore FILE    restore one (a name in BACKUP_DIR, or a path) into the live database
#   backup.sh schedule        take a dump every BACKUP_INTERVAL, forever (the compose service)
#
# Environment (everything comes from here; nothing secret is ever an argument or logged):
#   PGHOST, PGPORT, PGUSER    where PostgreSQL is, as libpq reads them
#   PGDATABASE                the database (required); dump names start with it
#   PGPASSWORD_FILE           a file holding the password (a mounted secret), read into PGPASSWORD
#   PGPASSWORD                or the password itself (when PGPASSWORD_FILE is unset)
#   BACKUP_DIR                where dumps live (default /backups); also status/backup.prom
#   BACKUP_KEEP               dumps kept (default 48); older ones go only after a new one verified
#   BACKUP_INTERVAL           `schedule` only: time between dumps, in seconds or with s, m or h
#                             (default 1h)
#
# A dump is written to a hidden temporary name, verified (its table of contents lists, and every
# data block reads back to the end), then renamed, so a name that looks like a dump always is one.
# Restore refuses a file that does not verify (truncated, or not a pg_dump archive) or that does not
# hold this application's schema, before touching the database; then it replaces the public schema
# in ONE transaction, committed only if pg_restore read the whole archive: the live database either
# becomes the dump or stays exactly as it was. Running backends just wait on locks for a moment.
#
# Needs no writable root file system: it writes only to BACKUP_DIR.
# Exit status: 0 done; 1 failed (the reason on stderr); 2 usage error.

set -eu

BACKUP_DIR=${BACKUP_DIR:-/backups}
BACKUP_KEEP=${BACKUP_KEEP:-48}
BACKUP_INTERVAL=${BACKUP_INTERVAL:-1h}
STATUS_DIR=$BACKUP_DIR/status
STATUS_FILE=$STATUS_DIR/backup.prom
# Dumps hold password and token hashes: readable by their owner only.
umask 077

log() { printf '%s tasks-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
fail() {
  log "error: $*"
  exit 1
}
usage() {
  printf 'usage: %s backup | list | restore FILE | schedule\n' "${0##*/}" >&2
  exit 2
}

is_count() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac }

# BACKUP_INTERVAL in seconds: 3600, 3600s, 60m, 1h.
interval_seconds() {
  value=${BACKUP_INTERVAL%[smh]}
  if ! is_count "$value" || [ "$value" -eq 0 ]; then
    fail "BACKUP_INTERVAL=$BACKUP_INTERVAL is not a duration (seconds, or a number with s, m or h)"
  fi
  case $BACKUP_INTERVAL in
    *m) echo $((value * 60)) ;;
    *h) echo $((value * 3600)) ;;
    *) echo "$value" ;;
  esac
}

# The password goes into the environment of pg_dump/psql (libpq reads PGPASSWORD), never argv.
load_password() {
  if [ -n "${PGPASSWORD_FILE:-}" ]; then
    [ -r "$PGPASSWORD_FILE" ] || fail "PGPASSWORD_FILE $PGPASSWORD_FILE cannot be read"
    PGPASSWORD=$(cat "$PGPASSWORD_FILE")
    export PGPASSWORD
  fi
  [ -n "${PGDATABASE:-}" ] || fail 'PGDATABASE is not set'
}

require_dir() {
  [ -d "$BACKUP_DIR" ] || fail "BACKUP_DIR $BACKUP_DIR does not exist"
  [ -w "$BACKUP_DIR" ] ||
    fail "BACKUP_DIR $BACKUP_DIR is not writable by uid $(id -u) (on the host: install -d -m 0700 -o 999 -g 999 DIR)"
}

# The dumps of this database, oldest first (the names sort by time).
dumps() {
  for file in "$BACKUP_DIR/$PGDATABASE"-????????T??????Z.dump; do
    [ -f "$file" ] && printf '%s\n' "$file"
  done
  return 0
}

# Verifies a custom-format archive from end to end: its table of contents lists, and a full
# restore to /dev/null reads and decompresses every data block (a truncated file lists fine, but
# fails here).
verify() {
  pg_restore --list "$1" >/dev/null && pg_restore --file=/dev/null "$1"
}

# Writes the Prometheus text file read by node-exporter's textfile collector, atomically.
# Arguments: last success time, size, duration (seconds); the interval is kept from the previous
# file unless SCHEDULE_INTERVAL is set (the `schedule` loop sets it).
write_status() {
  mkdir -p "$STATUS_DIR"
  chmod 0755 "$STATUS_DIR"
  interval=${SCHEDULE_INTERVAL:-$(status_field interval_seconds)}
  tmp=$STATUS_DIR/.backup.prom.$$
  {
    gauge last_success_timestamp_seconds 'When the newest verified dump was completed.' "$1"
    gauge last_size_bytes 'Size of the newest verified dump.' "$2"
    gauge last_duration_seconds 'How long the newest dump took, verification included.' "$3"
    gauge dumps 'Dumps kept in the backup directory.' "$(dumps | wc -l | tr -d ' ')"
    gauge interval_seconds 'The schedule: seconds between dumps.' "$interval"
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$STATUS_FILE"
}

# One gauge in Prometheus text format; nothing when its value is not known (yet).
gauge() {
  [ -n "$3" ] || return 0
  printf '# HELP tasks_backup_%s %s\n# TYPE tasks_backup_%s gauge\ntasks_backup_%s %s\n' \
    "$1" "$2" "$1" "$1" "$3"
}

# A field of the current status file, or empty.
status_field() {
  sed -n "s/^tasks_backup_$1 \\([0-9][0-9]*\\)\$/\\1/p" "$STATUS_FILE" 2>/dev/null || true
}

cmd_backup() {
  load_password
  require_dir
  if ! is_count "$BACKUP_KEEP" || [ "$BACKUP_KEEP" -eq 0 ]; then
    fail "BACKUP_KEEP=$BACKUP_KEEP is not a count of 1 or more"
  fi
  # Leftovers of a run that was killed (never a dump in progress: those are minutes old at most).
  find "$BACKUP_DIR" -maxdepth 1 -name '.*.dump.partial' -mmin +1440 -exec rm -f {} + 2>/dev/null || true

  started=$(date +%s)
  name=$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump
  while [ -e "$BACKUP_DIR/$name" ]; do
    sleep 1
    name=$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump
  done
  partial=$BACKUP_DIR/.$name.partial
  trap 'rm -f "$partial"' EXIT
  trap 'exit 143' TERM INT

  # pg_dump fsyncs the file before it exits; --lock-wait-timeout: give up rather than queue behind
  # a long exclusive lock (a restore or a migration) for ever.
  pg_dump --format=custom --no-password --lock-wait-timeout=120s --file="$partial" ||
    fail "pg_dump of $PGDATABASE on ${PGHOST:-the local socket} failed; no dump was kept"
  verify "$partial" || fail "the new dump did not verify; it was deleted and older dumps were kept"
  mv -f "$partial" "$BACKUP_DIR/$name"
  trap - EXIT
  sync 2>/dev/null || true

  # Only now that a new dump verified: keep the newest BACKUP_KEEP.
  excess=$(($(dumps | wc -l) - BACKUP_KEEP))
  if [ "$excess" -gt 0 ]; then
    dumps | head -n "$excess" | while IFS= read -r old; do
      rm -f "$old"
      log "rotated out ${old##*/}"
    done
  fi

  finished=$(date +%s)
  size=$(wc -c <"$BACKUP_DIR/$name" | tr -d ' ')
  write_status "$finished" "$size" $((finished - started))
  log "dumped $PGDATABASE to $name ($size bytes, $((finished - started)) s)"
  printf '%s\n' "$name"
}

cmd_list() {
  [ -n "${PGDATABASE:-}" ] || fail 'PGDATABASE is not set'
  [ -d "$BACKUP_DIR" ] || fail "BACKUP_DIR $BACKUP_DIR does not exist"
  found=$(dumps)
  if [ -z "$found" ]; then
    log "no dumps of $PGDATABASE in $BACKUP_DIR"
    return 0
  fi
  printf '%s\n' "$found" | while IFS= read -r file; do
    printf '%s\t%s\t%s\n' "${file##*/}" "$(wc -c <"$file" | tr -d ' ')" "$(date -u -r "$file" +%Y-%m-%dT%H:%M:%SZ)"
  done
}

# The SQL stream psql runs for a restore: one transaction that replaces the public schema with the
# archive's, ending in COMMIT only if pg_restore exited 0 (otherwise an error that rolls it back).
restore_sql() {
  cat <<'SQL'
BEGIN;
-- Wait for running requests' locks, but not for ever: a stuck lock fails the restore, untouched.
SET LOCAL lock_timeout = '15s';
SET LOCAL client_min_messages = warning;
DROP SCHEMA public CASCADE;
-- As initdb makes it (PostgreSQL 15 and later).
CREATE SCHEMA public AUTHORIZATION pg_database_owner;
GRANT USAGE ON SCHEMA public TO PUBLIC;
SQL
  # POSIX sh has no pipefail: pg_restore's own exit status travels on fd 3, around the filter.
  # The filter drops `SET transaction_timeout`, which pg_restore 17 emits and a 16 server rejects
  # (harmless to drop: it resets a setting that is 0 by default), and only in the header.
  exec 4>&1
  status=$(
    {
      {
        rc=0
        pg_restore --no-owner --file=- "$1" || rc=$?
        echo "$rc" >&3
      } | awk 'NR <= 50 && $0 == "SET transaction_timeout = 0;" { next } { print }' >&4
    } 3>&1
  )
  exec 4>&-
  if [ "$status" = 0 ]; then
    printf 'COMMIT;\n\\echo tasks-backup: committed\n'
  else
    printf "DO \$\$ BEGIN RAISE EXCEPTION 'pg_restore failed (exit %s): rolled back'; END \$\$;\n" "$status"
  fi
}

cmd_restore() {
  [ $# -eq 1 ] || usage
  load_password
  case $1 in
    */*) file=$1 ;;
    *) file=$BACKUP_DIR/$1 ;;
  esac
  if [ ! -f "$file" ] || [ ! -r "$file" ]; then
    fail "$file is not a readable file"
  fi

  log "verifying $file"
  verify "$file" ||
    fail "refused: $file is not a complete pg_dump archive (truncated, damaged or another format); the database was not touched"
  pg_restore --list "$file" | grep -q ' TABLE public schema_migrations ' ||
    fail "refused: $file holds no tasks schema (no public.schema_migrations table); the database was not touched"

  started=$(date +%s)
  log "restoring $file into $PGDATABASE in one transaction"
  # ON_ERROR_STOP: the first failing statement ends psql, and the open transaction dies with the
  # connection. The marker proves the COMMIT ran: psql also exits 0 when its input just ends.
  result=$(restore_sql "$file" | psql -X -q --no-password -v ON_ERROR_STOP=1) ||
    fail "restore of $file failed and was rolled back; the database is as it was"
  case $result in
    *'tasks-backup: committed'*) ;;
    *) fail "restore of $file did not reach COMMIT and was rolled back; the database is as it was" ;;
  esac
  log "restored $file into $PGDATABASE in $(($(date +%s) - started)) s"
}

cmd_schedule() {
  SCHEDULE_INTERVAL=$(interval_seconds)
  load_password
  require_dir
  # Announce the schedule at once, so the freshness alert knows it even before the first dump.
  write_status "$(status_field last_success_timestamp_seconds)" \
    "$(status_field last_size_bytes)" "$(status_field last_duration_seconds)"
  # PID 1 in a container gets no default signal handling: stop promptly on `docker stop` (waits
  # below are in the background so the trap runs at once; a dump cut short leaves only a hidden
  # .partial file, removed by a later run).
  trap 'log "stopping"; exit 0' TERM INT
  log "every ${SCHEDULE_INTERVAL} s, keeping ${BACKUP_KEEP} dumps in $BACKUP_DIR"
  while :; do
    # Due when the newest dump is an interval old: restarts do not add dumps, nor skip one.
    newest=$(dumps | tail -n 1)
    wait_s=0
    if [ -n "$newest" ]; then
      wait_s=$(($(date -r "$newest" +%s) + SCHEDULE_INTERVAL - $(date +%s)))
    fi
    if [ "$wait_s" -gt 0 ]; then
      sleep "$wait_s" &
      wait $! || true
      continue
    fi
    # A subshell, so a failure (its `exit 1`) is logged and retried, not the end of the loop.
    (cmd_backup >/dev/null) &
    if ! wait $!; then
      retry=$((SCHEDULE_INTERVAL < 300 ? SCHEDULE_INTERVAL : 300))
      log "backup failed; next attempt in $retry s"
      sleep "$retry" &
      wait $! || true
    fi
  done
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
  backup | list | schedule)
    [ $# -eq 0 ] || usage
    "cmd_$command"
    ;;
  restore) cmd_restore "$@" ;;
  *) usage ;;
esac
