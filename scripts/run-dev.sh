#!/usr/bin/env bash
# Run plotjobs locally: web app, a worker, and a private Redis unless REDIS_URL is set.
source "$(dirname "$0")/venv.sh" requirements.txt
exec plotjobs dev "$@"
