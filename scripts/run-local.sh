#!/usr/bin/env bash
# Run the orchestrator on its embedded default: SQLite (./orchestrator.db), the example
# jobs in jobs/, the local Docker engine. On a fresh Debian 12 as root it first installs
# and starts what it needs (docker.io, busybox-static for the example image, python3-venv
# where ensurepip is missing; dockerd; a venv); as another user it says what to install.
# Run again, it skips what is done. Works without an image registry.
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
# The scheduler service, in the foreground (Ctrl-C stops it; runs in flight are
# reattached at the next start). Another shell can use the CLI meanwhile.
exec "$orchestrator" serve --jobs jobs/ --health-file ./orchestrator-health.json
