#!/usr/bin/env bash
# Run the whole test suite against a real Redis (REDIS_URL, else a private one).
source "$(dirname "$0")/venv.sh" requirements-dev.txt
exec python -m pytest "$@"
