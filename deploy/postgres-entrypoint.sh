#!/bin/sh
# Entrypoint of the air-gapped PostgreSQL image (scripts/postgres-image.sh): the subset
# of the official image's contract that deploy/compose.yaml uses. POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB make the role and database on first start.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
data=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
mkdir -p "$data" /run/postgresql
chown -R postgres:postgres "$data" /run/postgresql
chmod 700 "$data"
as_postgres() { runuser -u postgres -- "$@"; }
if [ ! -s "$data/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD must be set" >&2; exit 1; }
  as_postgres "$bin/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "listen_addresses = '*'" >>"$data/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
  as_postgres "$bin/psql" -v ON_ERROR_STOP=1 -U postgres -q <<SQL
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN CREATE ROLE "$user" LOGIN; END IF;
END\$\$;
ALTER ROLE "$user" WITH LOGIN SUPERUSER PASSWORD '$POSTGRES_PASSWORD';
SQL
  if [ "$database" != postgres ]; then
    as_postgres "$bin/createdb" -U postgres -O "$user" "$database"
  fi
  as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  echo "database $database for $user initialised"
fi
exec runuser -u postgres -- "$bin/postgres" -D "$data"
