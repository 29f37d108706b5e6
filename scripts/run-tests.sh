#!/usr/bin/env bash
# Run the static checks, then the test suite against a real Redis (REDIS_URL, else a private one).
# PLOTJOBS_SKIP_LINT=1 skips ruff and mypy, for quick local runs of a few tests.
source "$(dirname "$0")/venv.sh" requirements-dev.txt

check() {
  local what=$1
  shift
  if ! "$@"; then
    echo "run-tests: '$what' found problems (listed above); the tests did not run" >&2
    exit 1
  fi
}

if [ "${PLOTJOBS_SKIP_LINT:-0}" != 1 ]; then
  check "ruff check" ruff check --output-format concise .
  check "ruff format --check" ruff format --check .
  check "mypy" mypy
fi
exec python -m pytest "$@"
