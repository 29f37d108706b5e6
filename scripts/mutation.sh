#!/usr/bin/env bash
# Mutation testing of the modules that carry the guarantees ([tool.mutmut] in pyproject.toml).
#   scripts/mutation.sh                  every configured module, then the report (docs/mutation.md)
#   scripts/mutation.sh limits dedupe    only the modules named (their last path part), then the report
# Each mutant runs the tests that cover its function, on a private Redis per test session, so
# parallel mutants never share a database. Slow (about an hour for everything on 2 cores): not part of CI.
source "$(dirname "$0")/venv.sh" requirements-mutation.txt
unset REDIS_URL
children=${MUTATION_CHILDREN:-$(nproc)}

patterns=()
for module in "$@"; do
  path=$(grep -o "\"plotjobs/[a-z_/]*/${module}.py\"" pyproject.toml | tr -d '"') || true
  if [ -z "$path" ]; then
    echo "mutation: no configured module named '$module' (see [tool.mutmut] only_mutate in pyproject.toml)" >&2
    exit 2
  fi
  dotted=${path%.py}
  patterns+=("${dotted//\//.}.*")
done

mutmut run --max-children "$children" "${patterns[@]}"
exec python scripts/mutation_report.py docs/mutation.md
