#!/usr/bin/env bash
# Run the benchmark in its own environment (.venv-bench: the service's pins plus Celery's).
set -euo pipefail
project_root=$(cd "$(dirname "$0")/.." && pwd)
venv="$project_root/.venv-bench"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.installed"
wanted=$(cat "$project_root/requirements.txt" "$project_root/requirements-bench.txt" "$project_root/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing requirements.txt and requirements-bench.txt into $venv" >&2
  # Two steps: Celery pins an older python-dateutil than the service, which only the bench accepts.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$project_root/requirements.txt" -e "$project_root"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$project_root/requirements-bench.txt"
  echo "$wanted" > "$stamp"
fi
cd "$project_root"
exec "$venv/bin/python" bench/run.py "$@"
