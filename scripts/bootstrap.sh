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

stamp="$VENV/.lock-stamp"
want=$(cat requirements/bootstrap.txt requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "==> installing uv from requirements/bootstrap.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes -r requirements/bootstrap.txt
echo "==> installing dependencies from requirements/lock.txt"
"$VENV/bin/uv" pip sync --quiet --python "$VENV/bin/python" --require-hashes requirements/lock.txt
"$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps -e .
echo "$want" > "$stamp"
