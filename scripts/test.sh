#!/usr/bin/env bash
# The test command. First it provisions what the tests need (scripts/lib/provision.sh:
# as root on Debian 12 it installs and starts the Docker engine, PostgreSQL, HAProxy,
# docker-compose, the images, a venv with the dev tools; run again, it skips what is
# done). Then: lint, format check, type check, the whole pytest suite, and (for the whole
# suite only) the quick benchmarks, which fail only where a floor is missed by far.
# Extra arguments go to pytest. ORCHESTRATOR_TEST_POSTGRES_URL points it at another
# PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/provision.sh
provision test

step "tests"
bin=.venv/bin
echo "-- ruff check";  "$bin/ruff" check .
echo "-- ruff format"; "$bin/ruff" format --check .
echo "-- mypy";        "$bin/mypy"
status=0
if [ "$#" = 0 ]; then
  # Two stages: the independent tests in parallel (one file per worker, so a file's
  # service and fixtures stay together), then alone the tests marked `serial`: they
  # restart the engine or the database, or measure time (and `swarm`: they make the
  # engine a swarm).
  echo "-- pytest (parallel stage)"
  "$bin/pytest" -n 2 --dist loadfile -m "not serial and not swarm" || status=$?
  if [ "$status" = 0 ]; then
    echo "-- pytest (serial stage)"
    "$bin/pytest" -m "serial or swarm" || status=$?
  fi
else
  echo "-- pytest"
  "$bin/pytest" "$@" || status=$?
fi
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
if [ "$status" = 0 ] && [ "$#" = 0 ]; then
  echo "-- benchmarks (quick)"
  "$bin/python" -m benchmarks --quick || status=$?
fi
exit "$status"
