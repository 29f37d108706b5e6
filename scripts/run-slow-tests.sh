#!/usr/bin/env bash
# The tests CI leaves out for time (marked slow): the wheel and a third-party generator package
# installed into fresh venvs, and every built-in generator through workers and the page (docs/development.md).
set -euo pipefail
exec "$(dirname "$0")/run-tests.sh" -m slow "$@"
