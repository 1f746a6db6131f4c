#!/usr/bin/env bash
# Release checks of every package (or the ones named): build, twine --strict, wheel/sdist
# contents, long description, and each ENGINE in a clean venv against a real server.
#   bash scripts/release/check.sh [pool-mysql ...]
# Uses hatch from .ci-venv (scripts/test.sh installs it) or PATH; see RELEASING.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
HATCH=${HATCH:-}
if [ -z "$HATCH" ]; then
  if [ -x .ci-venv/bin/hatch ]; then HATCH=.ci-venv/bin/hatch; else HATCH=$(command -v hatch || true); fi
fi
if [ -z "$HATCH" ]; then
  echo "release check: hatch not found (bash scripts/test.sh installs it in .ci-venv)" >&2
  exit 1
fi
export PYENV_VERSION=${PYENV_VERSION:-3.11:3.12:3.13}
exec "$HATCH" run release:check "$@"
