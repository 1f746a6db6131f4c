#!/usr/bin/env bash
# Run Django's own test suite against the stock and the pooled ENGINEs and
# compare: a pooled ENGINE must not fail a test that the stock ENGINE passes.
#
# usage: scripts/django-suite/run.sh [--configs "pg pool_pg mysql pool_mysql"]
#            [--jobs 1|2] [--compare-only] [RUNTESTS ARGS / APP LABELS...]
#
#   Configurations: pg (django.db.backends.postgresql), pool_pg (pool_postgresql),
#   mysql (django.db.backends.mysql), pool_mysql (pool_mysql).
#   Any other argument goes to Django's tests/runtests.py. App labels given
#   there replace the default labels "backends transactions" (also settable
#   with DJSUITE_LABELS). Always added: --settings=<ours> --noinput
#   --parallel 1, and -v 2 unless a verbosity is given.
#   --jobs 2 (default) runs the two vendors side by side (never two runs
#   against the same server at once); --jobs 1 runs everything in turn.
#   --compare-only re-prints the comparison of the last results.
#
# Servers: PostgreSQL 127.0.0.1:5432 (postgres, trust) and MariaDB/MySQL
# 127.0.0.1:3306 (root, no password), or POOL_TEST_PG_URL / POOL_TEST_MYSQL_URL.
# Test databases are named djsuite_<config>_test_{default,other}.
#
# Creates/reuses the venv .venv-django-suite (python3.11, or $DJSUITE_PYTHON)
# and the cache .cache/django-suite/ (Django sdist, unpacked source, logs in
# logs/, JSON results in results/). DJSUITE_REFRESH=1 downloads the newest
# Django 5.2.x sdist again and reinstalls the venv.
#
# An existing PYTHONPATH is kept (after ours): PYTHONPATH=/tmp/patched-src
# run.sh tests patched copies of pool_core/pool_postgresql/pool_mysql
# without touching packages/.
#
# Exit status: 0 when no pooled run has a failure/error the stock run lacks
# (apart from EXPECTED_DIFFERENCES below); 1 when one has; 2 when a run
# produced no result at all (crash, server unreachable).
set -euo pipefail

# Differences that are allowed because the test is about something the
# pooled ENGINE replaces by design (see FINDINGS.md for the reasoning).
# One per line: CONFIG|TEST ID|REASON. Keep this minimal and honest:
# everything else that fails only pooled is a bug to fix in packages/.
EXPECTED_DIFFERENCES=(
  "pool_pg|backends.postgresql.tests.Tests.test_connect_pool|tests Django's own psycopg_pool (OPTIONS['pool']), which pool_postgresql replaces and refuses by design (ImproperlyConfigured in check_settings)"
  "pool_pg|backends.postgresql.tests.Tests.test_connect_pool_with_timezone|same: connects with OPTIONS['pool']=True, which pool_postgresql refuses by design"
)
# With DJSUITE_POOL_OPTIONS='{"CHECKOUT": "transaction"}': tests that read
# connection.connection after a statement, which transaction mode has given
# back to the pool by then (README, "Transaction pooling").
if [[ "${DJSUITE_POOL_OPTIONS:-}" == *'"transaction"'* ]]; then
  for cfg in pool_pg pool_mysql; do
    EXPECTED_DIFFERENCES+=(
      "$cfg|backends.base.test_base.ConnectionHealthChecksTests.test_health_checks_enabled|CHECKOUT=transaction: wrapper.connection is None after the statement (given back), so 'a new connection' cannot be told by identity"
      "$cfg|backends.base.test_base.ConnectionHealthChecksTests.test_set_autocommit_health_checks_enabled|same: compares wrapper.connection after statements in autocommit"
    )
  done
  EXPECTED_DIFFERENCES+=(
    "pool_pg|backends.postgresql.tests.Tests.test_bypass_timezone_configuration*|CHECKOUT=transaction: reads new_connection.connection after its cursor closed (None: given back)"
  )
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/django-suite"
VENV="$ROOT/.venv-django-suite"
CACHE="$ROOT/.cache/django-suite"
LOGS="$CACHE/logs"
RESULTS="$CACHE/results"
PY="${DJSUITE_PYTHON:-python3.11}"
DJANGO_SPEC="Django>=5.2,<5.3"

CONFIGS="pg pool_pg mysql pool_mysql"
JOBS=2
COMPARE_ONLY=0
PASS=()
while (($#)); do
  case "$1" in
    --configs) CONFIGS="$2"; shift 2 ;;
    --configs=*) CONFIGS="${1#*=}"; shift ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --jobs=*) JOBS="${1#*=}"; shift ;;
    --compare-only) COMPARE_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) PASS+=("$1"); shift ;;
  esac
done
CONFIGS="${CONFIGS//,/ }"
for c in $CONFIGS; do
  case "$c" in pg|pool_pg|mysql|pool_mysql) ;; *) echo "unknown configuration: $c" >&2; exit 2 ;; esac
done

# Split the pass-through arguments into runtests options and app labels.
# Options of runtests.py that take a separate value:
VALUE_OPTS=" -v --verbosity --settings --parallel -k --start-after --start-at --bisect --pair --selenium --selenium-hub --external-host --shuffle --durations "
OPTS=()
LABELS=()
HAVE_VERBOSITY=0
expect_value=0
for a in ${PASS[@]+"${PASS[@]}"}; do
  if ((expect_value)); then OPTS+=("$a"); expect_value=0; continue; fi
  case "$a" in
    --settings|--settings=*|--parallel|--parallel=*|--noinput)
      echo "run.sh sets $a itself" >&2; exit 2 ;;
    -v|--verbosity) HAVE_VERBOSITY=1; OPTS+=("$a"); expect_value=1 ;;
    -v[0-9]|--verbosity=*) HAVE_VERBOSITY=1; OPTS+=("$a") ;;
    -*) OPTS+=("$a"); [[ "$VALUE_OPTS" == *" $a "* ]] && expect_value=1 ;;
    *) LABELS+=("$a") ;;
  esac
done
if ((${#LABELS[@]} == 0)); then read -r -a LABELS <<<"${DJSUITE_LABELS:-backends transactions}"; fi
((HAVE_VERBOSITY)) || OPTS+=(-v 2)

mkdir -p "$LOGS" "$RESULTS"
# Runtime artefacts only: keep them out of git without touching .gitignore.
[[ -f "$ROOT/.cache/.gitignore" ]] || printf '*\n' >"$ROOT/.cache/.gitignore"

EXPECTED_FILE="$RESULTS/expected-differences.txt"
printf '%s\n' "${EXPECTED_DIFFERENCES[@]}" >"$EXPECTED_FILE"

compare() {
  "$VENV/bin/python" "$HERE/compare.py" "$RESULTS" "$LOGS" "$EXPECTED_FILE" $CONFIGS
}

if ((COMPARE_ONLY)); then compare; exit $?; fi

log() { printf '[django-suite %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# -- system packages for mysqlclient ------------------------------------------
if [[ " $CONFIGS " == *mysql* ]] && ! { pkg-config --exists libmariadb || pkg-config --exists mysqlclient; } 2>/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing libmariadb-dev and pkg-config (needed to build mysqlclient)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null
  else
    echo "mysqlclient needs libmariadb-dev (or libmysqlclient-dev) and pkg-config" >&2; exit 2
  fi
fi

# -- Django sdist ------------------------------------------------------------------
SDIST="$(ls "$CACHE"/[dD]jango-5.2.*.tar.gz 2>/dev/null | sort -V | tail -n1 || true)"
if [[ -z "$SDIST" || "${DJSUITE_REFRESH:-0}" == 1 ]]; then
  log "downloading the $DJANGO_SPEC sdist"
  command -v "$PY" >/dev/null || { echo "$PY not found (set DJSUITE_PYTHON)" >&2; exit 2; }
  "$PY" -m pip download -q --no-binary :all: --no-deps "$DJANGO_SPEC" -d "$CACHE"
  SDIST="$(ls "$CACHE"/[dD]jango-5.2.*.tar.gz | sort -V | tail -n1)"
fi
SRC="${SDIST%.tar.gz}"
if [[ ! -f "$SRC/tests/runtests.py" ]]; then
  log "unpacking $(basename "$SDIST")"
  tar -xzf "$SDIST" -C "$CACHE"
fi
DJANGO_VERSION="$(basename "$SRC" | sed 's/^[dD]jango-//')"

# -- venv ------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  command -v "$PY" >/dev/null || { echo "$PY not found (set DJSUITE_PYTHON)" >&2; exit 2; }
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
# Test requirements of the Django sdist that the backends/transactions apps
# use (tests/requirements/{py3,postgres,mysql}.txt): drivers, psycopg-pool
# (for Django's own pool tests), and the runner's helpers.
REQS=(
  "psycopg[binary]>=3.1.8" "psycopg-pool>=3.2.0" "mysqlclient>=1.4.3"
  "asgiref>=3.8.1" "sqlparse>=0.3.1" "tblib>=1.5.0" tzdata
)
STAMP="$VENV/.djsuite-installed"
WANT="$(printf '%s\n' "$DJANGO_VERSION" "${REQS[@]}"; cat "$ROOT"/packages/pool-{core,postgresql,mysql}/pyproject.toml | sha256sum)"
if [[ "${DJSUITE_REFRESH:-0}" == 1 || ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  log "installing Django $DJANGO_VERSION (from the sdist), our packages and test requirements"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$SRC"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -e "$ROOT/packages/pool-core" -e "$ROOT/packages/pool-postgresql" -e "$ROOT/packages/pool-mysql" \
    "${REQS[@]}"
  # The sdist's Django must be the one under test (pool-core depends on Django).
  got="$("$VENV/bin/python" -c 'import django; print(django.get_version())')"
  [[ "$got" == "$DJANGO_VERSION" ]] || { echo "venv has Django $got, expected $DJANGO_VERSION" >&2; exit 2; }
  printf '%s' "$WANT" >"$STAMP"
fi

# -- servers reachable? -----------------------------------------------------------
check_server() {  # $1 = settings module
  PYTHONPATH="$HERE" "$VENV/bin/python" - "$1" <<'EOF'
import importlib, sys
s = importlib.import_module(sys.argv[1]).DATABASES["default"]
try:
    if "mysql" in s["ENGINE"]:
        import MySQLdb
        MySQLdb.connect(host=s["HOST"], port=int(s["PORT"]), user=s["USER"], password=s["PASSWORD"]).close()
    else:
        import psycopg
        psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"] or None,
                        dbname="postgres", connect_timeout=10).close()
except Exception as e:
    sys.exit(f"cannot reach the server for {sys.argv[1]} ({s['HOST']}:{s['PORT']}): {e}")
EOF
}
[[ " $CONFIGS " != *pg\ * ]] || check_server djsuite_pg || exit 2
[[ " $CONFIGS " != *mysql\ * ]] || check_server djsuite_mysql || exit 2

# -- runs -----------------------------------------------------------------------
run_config() {  # $1 = configuration
  local c="$1" logf="$LOGS/$1.log" rc=0
  rm -f "$RESULTS/$c.json"
  log "$c: start (log: ${logf#"$ROOT"/})"
  (
    cd "$SRC/tests"
    export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" DJSUITE_RESULT_JSON="$RESULTS/$c.json" PYTHONUNBUFFERED=1
    echo "+ runtests.py ${LABELS[*]} --settings=djsuite_$c --noinput --parallel 1 ${OPTS[*]}"
    exec "$VENV/bin/python" runtests.py "${LABELS[@]}" --settings="djsuite_$c" \
      --noinput --parallel 1 "${OPTS[@]}"
  ) >"$logf" 2>&1 || rc=$?
  log "$c: done (exit $rc): $(grep -E '^Ran [0-9]+ tests? in' "$logf" | tail -n1 || true) $(grep -E '^(OK|FAILED)( \(|$)' "$logf" | tail -n1 || true)"
}

lane() { for c in "$@"; do run_config "$c"; done; }

PG_LANE=() MY_LANE=()
for c in $CONFIGS; do
  case "$c" in *pg) PG_LANE+=("$c") ;; *mysql) MY_LANE+=("$c") ;; esac
done
log "Django $DJANGO_VERSION; labels: ${LABELS[*]}; configurations: $CONFIGS; jobs: $JOBS"
if [[ "$JOBS" -ge 2 ]]; then
  # One lane per server: at most two runs at once, never two on one server.
  pids=()
  if ((${#PG_LANE[@]})); then lane "${PG_LANE[@]}" & pids+=($!); fi
  if ((${#MY_LANE[@]})); then lane "${MY_LANE[@]}" & pids+=($!); fi
  trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
  for p in "${pids[@]}"; do wait "$p"; done
  trap - INT TERM
else
  lane $CONFIGS
fi

set +e
compare
status=$?
echo "(logs: ${LOGS#"$ROOT"/}/; results: ${RESULTS#"$ROOT"/}/)"
exit $status
