#!/bin/sh
# PostgreSQL for the local real-node cluster: initdb on an empty volume, then the server
# in the foreground. The environment follows the official image's names:
#   POSTGRES_PASSWORD   the superuser's password (required; scram-sha-256 from anywhere)
#   POSTGRES_USER       the superuser (default postgres)
#   POSTGRES_DB         a database created at initdb (default: the user's name)
#   PGDATA              the cluster's folder (default /var/lib/postgresql/data/pgdata)
# Extra arguments go to postgres (e.g. -c max_connections=50).
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "postgresql: POSTGRES_PASSWORD is not set" >&2
  exit 2
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  {
    echo "listen_addresses = '*'"
    echo "unix_socket_directories = '/tmp'"
  } >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != "postgres" ]; then
    postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE DATABASE "$POSTGRES_DB";
SQL
  fi
  echo "postgresql: initialised $PGDATA (database $POSTGRES_DB)"
fi
exec postgres -D "$PGDATA" "$@"
