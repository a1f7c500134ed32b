#!/usr/bin/env bash
# Run the orchestrator on its embedded default: SQLite (./orchestrator.db), the example
# jobs in jobs/, the local Docker engine. Works without an image registry: the example
# jobs' image is built locally when it cannot be pulled (scripts/local-images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/orchestrator ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -e .
fi
export ORCHESTRATOR_DATABASE_URL=${ORCHESTRATOR_DATABASE_URL:-sqlite:///orchestrator.db}

if ! docker info >/dev/null 2>&1; then
  echo "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-the local socket}): start dockerd first" >&2
  exit 1
fi
scripts/local-images.sh
# Host folders the example jobs mount (bind sources must exist before a run).
mkdir -p /tmp/orchestrator-demo/reports /tmp/orchestrator-demo/config

orchestrator=.venv/bin/orchestrator
"$orchestrator" db upgrade
"$orchestrator" jobs apply jobs/
"$orchestrator" jobs list
# The scheduler service, in the foreground (Ctrl-C stops it; runs in flight are
# reattached at the next start). Another shell can use the CLI meanwhile.
exec "$orchestrator" serve --jobs jobs/ --health-file ./orchestrator-health.json
