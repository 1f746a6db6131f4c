#!/usr/bin/env bash
# The one command that sets up a fresh machine and runs every test:
#   bash scripts/test.sh            (extra args go to the matrix's pytest, e.g. -k fork;
#                                    POOL_TEST_HEAVY=0 skips the heavy reliability run,
#                                    POOL_TEST_TXMODE=0 the CHECKOUT=transaction contract pass)
# Installs system packages (as root, via apt), hatch in .ci-venv, then runs
# lint, types and the test matrix (Django 5.2 / Python 3.11, Django 6 / 3.12, 3.13),
# each with both driver pairs, against real PostgreSQL and MariaDB servers:
# POOL_TEST_PG_URL / POOL_TEST_MYSQL_URL if set, else the local default ports,
# else throwaway servers started from the binaries on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  PGMAJOR=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    ${PGMAJOR:+"postgresql-$PGMAJOR-postgis-3"} libmariadb-dev pkg-config gdal-bin libgdal32 libgeos-c1v5 \
    pgbouncer wrk iproute2 >/dev/null
  # pool-jdbc / pool-odbc: a JVM, the JDBC jars, unixODBC and the ODBC drivers.
  command -v java >/dev/null || apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
  apt-get install -y -qq --no-install-recommends libpostgresql-jdbc-java libmariadb-java \
    unixodbc odbc-postgresql odbc-mariadb >/dev/null
fi

PY=python3.11
command -v "$PY" >/dev/null || PY=python3
export PYENV_VERSION=${PYENV_VERSION:-3.11:3.12:3.13}
if [ ! -x .ci-venv/bin/hatch ]; then
  "$PY" -m venv .ci-venv
  .ci-venv/bin/pip install -q "hatch>=1.16"
fi
export HATCH_DATA_DIR="$ROOT/.ci-hatch/data" HATCH_CACHE_DIR="$ROOT/.ci-hatch/cache"
export HATCH_CONFIG="$ROOT/.ci-hatch/config.toml"
mkdir -p "$ROOT/.ci-hatch" && touch "$HATCH_CONFIG"
HATCH=.ci-venv/bin/hatch

# Every pytest run (each matrix env runs two passes, plus the heavy runs) leaves
# junit XML and its exit status in $RESULTS (tests/_ci_results.py). On exit, pass
# or fail, scripts/ci_summary.py sums them: its last line, the last line of this
# script's output, is "total: N passed, N failed, N skipped". It fails the run on
# any failure or error, a pytest run that exited non-zero (5: no tests) or never
# finished, a failed step of this script, or no test passed at all.
RESULTS="$ROOT/.ci-results"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
export POOL_TEST_RESULTS="$RESULTS"
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }-p tests._ci_results"
summary() {
  local status=$?
  trap - EXIT
  set +e
  "$PY" "$ROOT/scripts/ci_summary.py" "$RESULTS" --status "$status"
  local verdict=$?
  [ "$status" != 0 ] || status=$verdict
  exit "$status"
}
trap summary EXIT

echo "== lint"; $HATCH run lint:check
echo "== types"; $HATCH run types:check
echo "== docs"   # the MkDocs site (mkdocs.yml, docs/): strict, so a broken link or anchor fails
.ci-venv/bin/pip install -q "mkdocs>=1.6"
.ci-venv/bin/mkdocs build --strict --site-dir .ci-docs-site
echo "== tests"
# hatch runs every matrix env and stops at the first failure; pytest's exit
# code 5 (no tests collected) is non-zero and fails the run too (and the summary says so).
$HATCH run test:run "$@"
if [ "${POOL_TEST_TXMODE:-1}" != 0 ]; then
  # The contract suite again in CHECKOUT="transaction" (once, one env, both driver pairs).
  # POOL_TEST_TXMODE=0 skips it.
  echo "== contract suite, CHECKOUT=transaction"
  $HATCH run test.py3.11-5.2:txmode
fi
if [ "${POOL_TEST_HEAVY:-1}" != 0 ]; then
  # Heavy fault/load scenarios: once (one env, both driver pairs), then the figures table.
  # Always in CI; POOL_TEST_HEAVY=0 skips them (e.g. with a -k subset of the matrix above).
  echo "== reliability (heavy)"
  rm -f reliability-results.jsonl
  $HATCH run test.py3.11-5.2:heavy
  $HATCH run test.py3.11-5.2:report
fi
echo "== release"; HATCH=$HATCH bash scripts/release/check.sh
echo "== all steps done"
