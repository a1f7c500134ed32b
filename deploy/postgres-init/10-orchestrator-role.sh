#!/bin/sh
# Runs once, when PostgreSQL starts on an empty data directory (the official image and
# our air-gapped one both run /docker-entrypoint-initdb.d/*.sh). The scheduler gets a
# role of its own that is NOT a superuser and owns only its database. The password
# reaches psql as a variable, quoted by :'password' as a literal: never in the SQL text.
set -eu
: "${ORCHESTRATOR_DB_PASSWORD:?set ORCHESTRATOR_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 -U postgres -d postgres -q -v password="$ORCHESTRATOR_DB_PASSWORD" <<'SQL'
CREATE ROLE orchestrator LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE orchestrator OWNER orchestrator;
SQL
echo "role and database orchestrator created"
