#!/usr/bin/env bash
# Creates .venv and installs the project from the hashed lock files.
# Idempotent: skips the install when the lock has not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${RECONCILER_VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Our own packages' bytecode, written ahead: every process the service and
# the tests start (worker, API, simulators, CLI) then loads it instead of
# compiling the sources again, which matters where PYTHONDONTWRITEBYTECODE
# is set. Stale files are harmless (Python checks the source's mtime).
compile_own() {
  "$VENV/bin/python" -m compileall -q -j 0 bank_adapters bench domain ledger observability \
    reconciler tests workflows > /dev/null
}

stamp="$VENV/.lock-stamp"
want=$(cat requirements/bootstrap.txt requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  compile_own
  exit 0
fi

echo "==> installing uv from requirements/bootstrap.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes -r requirements/bootstrap.txt
echo "==> installing dependencies from requirements/lock.txt"
# --compile-bytecode: the dependencies' bytecode too (see compile_own).
"$VENV/bin/uv" pip sync --quiet --compile-bytecode --python "$VENV/bin/python" \
  --require-hashes requirements/lock.txt
"$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps -e .
compile_own
echo "$want" > "$stamp"
