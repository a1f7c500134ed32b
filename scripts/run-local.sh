#!/usr/bin/env bash
# Run the orchestrator on its embedded default: SQLite (./orchestrator.db), the example
# jobs in jobs/, the local Docker engine, and the dashboard and API on 127.0.0.1:8080.
# On a fresh Debian 12 as root it first installs and starts what it needs (docker.io,
# busybox-static for the example image, python3-venv where ensurepip is missing; dockerd;
# a venv); as another user it says what to install. Run again, it skips what is done.
# Works without an image registry.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/provision.sh
provision run
export ORCHESTRATOR_DATABASE_URL=${ORCHESTRATOR_DATABASE_URL:-sqlite:///orchestrator.db}
# Host folders the example jobs mount (bind sources must exist before a run).
mkdir -p /tmp/orchestrator-demo/reports /tmp/orchestrator-demo/config

step "the service"
orchestrator=.venv/bin/orchestrator
"$orchestrator" db upgrade
"$orchestrator" jobs apply jobs/
"$orchestrator" jobs list

# The dashboard and the API, on this host only. Unless a token is given, one write token
# is made on the first run, in a file only its owner reads, beside the SQLite database;
# the token itself is never printed, only where it is.
http=${ORCHESTRATOR_HTTP:-127.0.0.1:8080}
signin="with the token you gave (ORCHESTRATOR_API_TOKEN or ORCHESTRATOR_API_TOKENS_FILE)"
if [ -z "${ORCHESTRATOR_API_TOKEN:-}${ORCHESTRATOR_API_TOKEN_FILE:-}${ORCHESTRATOR_API_TOKENS_FILE:-}" ]; then
  case $ORCHESTRATOR_DATABASE_URL in
    sqlite:///*) beside=$(dirname "${ORCHESTRATOR_DATABASE_URL#sqlite:///}") ;;
    *) beside=. ;;
  esac
  token_file=$(cd "$beside" && pwd)/orchestrator-api-token
  if [ ! -s "$token_file" ]; then
    (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_hex(16))' >"$token_file")
  fi
  chmod 600 "$token_file"
  export ORCHESTRATOR_API_TOKEN_FILE=$token_file
  signin="with the token in $token_file: cat $token_file"
fi
echo
echo "Dashboard and API: http://$http/"
echo "Sign in $signin"
echo "The example 'hello' fires every 30 s; from another shell: $orchestrator runs list"
echo "Ctrl-C stops the service."
# The scheduler service, in the foreground (Ctrl-C stops it; runs in flight are
# reattached at the next start). Another shell can use the CLI meanwhile.
exec "$orchestrator" serve --jobs jobs/ --health-file ./orchestrator-health.json --http "$http"
