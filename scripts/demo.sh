#!/usr/bin/env bash
# Set up a private venv and run the pooling demo (python -m demo).
#
# Usage, from anywhere:  bash scripts/demo.sh
# Env: DEMO_PYTHON (default python3.11), DEMO_VENV (default <repo>/.venv-demo),
#      DEMO_DATABASE_URL (use this PostgreSQL instead of a throwaway one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${DEMO_PYTHON:-python3.11}"
VENV="${DEMO_VENV:-$ROOT/.venv-demo}"

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "demo.sh: $PY not found; set DEMO_PYTHON to a Python >= 3.10" >&2
  exit 2
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "demo.sh: creating $VENV with $("$PY" -c 'import sys; print(sys.executable)')"
  "$PY" -m venv "$VENV"
fi
# Always reinstall the local packages so the demo runs the tree's current code.
echo "demo.sh: installing pool-core, pool-postgresql, psycopg[binary], Django 5.2 ..."
if ! out=$("$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      ./packages/pool-core ./packages/pool-postgresql "psycopg[binary]" "Django>=5.2,<5.3" 2>&1); then
  printf '%s\n' "$out" >&2
  echo "demo.sh: pip install failed" >&2
  exit 1
fi
# Drop the harmless notices some machines' pip configuration prints; show anything else.
printf '%s\n' "$out" | grep -v -e '^$' -e 'is ignored: it is neither a file nor a directory' || true

exec "$VENV/bin/python" -m demo "$@"
