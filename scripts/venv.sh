# Sourced by the run scripts: make .venv (Python 3.11+) and install what $1 lists with the project and all its
# extras, once per change.
set -euo pipefail
project_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
requirements=${1:?requirements file}
# Every optional feature: a checkout runs `plotjobs dev` (private Redis), the bridge and the dashboard.
extras=dev,amqp,dashboard
venv="$project_root/.venv"
python=${PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "plotjobs needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.installed-$(basename "$requirements")"
wanted=$(echo "$extras" | cat - "$project_root/$requirements" "$project_root/requirements.txt" "$project_root/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing $requirements into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$project_root/$requirements" -e "$project_root[$extras]"
  echo "$wanted" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$project_root"
