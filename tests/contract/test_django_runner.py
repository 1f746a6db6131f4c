"""Django's test runner on a pooled ENGINE: create/destroy test DBs, --parallel, --keepdb."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(engine, *args: str) -> subprocess.CompletedProcess:
    db = engine.settings(POOL_SIZE=2, MAX_OVERFLOW=2)
    db["OPTIONS"] = engine.runner_options()
    db["TEST"] = {"NAME": f"test_runner_{engine.dbname}"}
    env = {**os.environ, "RUNNER_DB": json.dumps(db), "PYTHONPATH": ROOT,
           "RUNNER_MYSQL_DRIVER": os.environ.get("POOL_TEST_MYSQL_DRIVER", "pymysql")}
    if engine.vendor != "postgresql":
        env.pop("POOL_TEST_PG_DRIVER", None)
    cmd = [sys.executable, "-m", "django", "test", "tests.runner_project.runnerapp",
           "--settings=tests.runner_project.settings", "--noinput", "-v", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.requires("test_runner_databases")
@pytest.mark.parametrize("args", [pytest.param((), id="serial"),
                                  pytest.param(("--parallel", "2"), id="parallel",
                                               marks=pytest.mark.requires("parallel_test_runner")),
                                  pytest.param(("--keepdb",), id="keepdb")])
def test_django_test_runner(engine, args):
    result = _run(engine, *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Ran 6 tests" in output, output[-4000:]
    assert "OK" in output
    if args == ("--keepdb",):
        # Second run re-uses the kept database, then clean it up.
        again = _run(engine, "--keepdb")
        assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
        assert "Using existing test database" in again.stdout + again.stderr
        engine.q(("DROP DATABASE IF EXISTS \"{0}\"" if engine.vendor == "postgresql"
                  else "DROP DATABASE IF EXISTS `{0}`").format(f"test_runner_{engine.dbname}"))
        engine.q(("DROP DATABASE IF EXISTS \"{0}\"" if engine.vendor == "postgresql"
                  else "DROP DATABASE IF EXISTS `{0}`").format(f"test_runner_{engine.dbname}_other"))
