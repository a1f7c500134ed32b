#!/bin/sh
# Entrypoint of the air-gapped PostgreSQL image (scripts/postgres-image.sh): the part of
# the official image's contract that deploy/compose.yaml uses. On the first start of an
# empty data directory: initdb, the superuser `postgres` gets POSTGRES_PASSWORD (which
# must be set), and the scripts in /docker-entrypoint-initdb.d run, as in the official
# image. Passwords reach psql as variables, never inside SQL text.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
data=${PGDATA:-/var/lib/postgresql/data}
mkdir -p "$data" /run/postgresql
chown -R postgres:postgres "$data" /run/postgresql
chmod 700 "$data"
as_postgres() { runuser -u postgres -- env PATH="$bin:$PATH" "$@"; }
if [ ! -s "$data/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD must be set" >&2; exit 1; }
  as_postgres initdb -D "$data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "listen_addresses = '*'" >>"$data/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  as_postgres pg_ctl -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
  echo "ALTER ROLE postgres PASSWORD :'password';" |
    as_postgres psql -v ON_ERROR_STOP=1 -U postgres -q -v password="$POSTGRES_PASSWORD"
  for script in /docker-entrypoint-initdb.d/*.sh; do
    [ -e "$script" ] || continue
    echo "running $script"
    as_postgres sh "$script"
  done
  as_postgres pg_ctl -D "$data" -m fast -w stop >/dev/null
  echo "database initialised"
fi
exec runuser -u postgres -- "$bin/postgres" -D "$data"
