#!/usr/bin/env bash
# Build the benchmark's own venv and run scripts/bench/bench.py (all arguments are passed on).
#
# Usage, from anywhere:  bash scripts/bench/run.sh            # full run, ~15 min on 2 cores
#                        bash scripts/bench/run.sh --smoke    # a few cycles of each contender
# Env: BENCH_PYTHON (default python3.11), BENCH_VENV (default <repo>/.bench-venv),
#      POOL_BENCH_PG_URL / POOL_BENCH_MYSQL_URL (superuser URLs of servers to use instead of
#      throwaway ones; PostgreSQL needs pg_stat_statements loaded for the server-side counts).
# Writes benchmarks/results/{results.json,results.csv,results.md,throughput.png} (or --out DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${BENCH_PYTHON:-python3.11}"
VENV="${BENCH_VENV:-$ROOT/.bench-venv}"

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "run.sh: $PY not found; set BENCH_PYTHON to a Python >= 3.10" >&2
  exit 2
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1 && \
   ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libmariadb 2>/dev/null; }; then
  # mysqlclient builds from source: it needs the MariaDB client headers and pkg-config.
  echo "run.sh: installing libmariadb-dev and pkg-config (apt-get) for mysqlclient"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libmariadb-dev pkg-config >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libmariadb-dev pkg-config >/dev/null; }
fi
for tool in initdb pg_ctl mariadbd mariadb-install-db pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] || \
    echo "run.sh: warning: $tool not on PATH (throwaway servers / mysqlclient build need it)" >&2
done
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "run.sh: creating $VENV"
  "$PY" -m venv "$VENV"
fi
echo "run.sh: installing Django 5.2, drivers, django-db-connection-pool, matplotlib and this tree ..."
if ! out=$("$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      "Django>=5.2,<5.3" "psycopg[binary,pool]" psycopg2-binary mysqlclient PyMySQL \
      django-db-connection-pool matplotlib \
      -e ./packages/pool-core -e ./packages/pool-postgresql -e ./packages/pool-mysql 2>&1); then
  printf '%s\n' "$out" >&2
  echo "run.sh: pip install failed" >&2
  exit 1
fi
printf '%s\n' "$out" | grep -v -e '^$' -e 'is ignored: it is neither a file nor a directory' || true

exec "$VENV/bin/python" scripts/bench/bench.py "$@"
