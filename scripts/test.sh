#!/usr/bin/env bash
# The test command: lint, format check, type check, then the whole pytest suite.
# Needs a running Docker engine and, for the PostgreSQL half, ORCHESTRATOR_TEST_POSTGRES_URL
# (`bash .ci/run` provides both on a Debian host). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
[ -x "$bin/pytest" ] || { echo "no .venv: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'" >&2; exit 1; }

echo "-- ruff check";  "$bin/ruff" check .
echo "-- ruff format"; "$bin/ruff" format --check .
echo "-- mypy";        "$bin/mypy"
echo "-- pytest"
status=0
"$bin/pytest" "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
