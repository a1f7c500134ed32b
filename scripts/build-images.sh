#!/usr/bin/env bash
# Build the images of deploy/compose.yaml without a registry: the scheduler image
# (default tag local/orchestrator:latest) and, when postgres:16 cannot be pulled, a
# local PostgreSQL image (local/postgres:15, scripts/postgres-image.sh; then start
# compose with POSTGRES_IMAGE=local/postgres:15).
# The scheduler's base is python:3.11-slim when it can be had, else
# local/python:3.11-bookworm made by scripts/base-image.sh (ORCHESTRATOR_BASE_IMAGE picks
# one). The project and its dependencies go in from a wheelhouse built here (pip reaches
# PyPI from the host only).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-local/orchestrator:latest}
BASE=${ORCHESTRATOR_BASE_IMAGE:-}
if [ -z "$BASE" ]; then
  if docker image inspect python:3.11-slim >/dev/null 2>&1 \
      || timeout 60 docker pull -q python:3.11-slim >/dev/null 2>&1; then
    BASE=python:3.11-slim
  else
    BASE=local/python:3.11-bookworm
    scripts/base-image.sh "$BASE"
  fi
fi
python=.venv/bin/python
[ -x "$python" ] || python=python3
mkdir -p wheelhouse
rm -f wheelhouse/orchestrator-*.whl
"$python" -m pip wheel -q --find-links wheelhouse -w wheelhouse . 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp deploy/Dockerfile "$context/"
cp -r wheelhouse "$context/wheelhouse"
docker build -q --build-arg BASE="$BASE" -t "$TAG" "$context" >/dev/null
echo "image $TAG built on $BASE"
if [ "${ORCHESTRATOR_SKIP_POSTGRES_IMAGE:-}" != 1 ] && ! docker image inspect postgres:16 >/dev/null 2>&1 \
    && ! timeout 60 docker pull -q postgres:16 >/dev/null 2>&1; then
  scripts/postgres-image.sh local/postgres:15
  echo "no registry: start compose with POSTGRES_IMAGE=local/postgres:15"
fi
