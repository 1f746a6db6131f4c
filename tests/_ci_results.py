"""pytest plugin for CI: every pytest run leaves its results in $POOL_TEST_RESULTS.

scripts/test.sh loads it in every pytest process (``PYTEST_ADDOPTS=-p tests._ci_results``)
and sums the files with scripts/ci_summary.py. Per run, named after the hatch
environment, the driver pair and the process:

- ``<run>.xml``: junit XML (``--junitxml``, unless the command line gave one);
- ``<run>.started``: written at start, so a run that died before the end is seen;
- ``<run>.exit``: pytest's exit status (5 = no tests collected), written at the end.
"""

from __future__ import annotations

import os
import re
import time

import pytest

_RUN_KEY = pytest.StashKey[str]()


def _run_name(config: pytest.Config) -> str:
    env = os.environ.get("HATCH_ENV_ACTIVE", "nohatch")
    drivers = f"{os.environ.get('POOL_TEST_PG_DRIVER', 'psycopg')}+{os.environ.get('POOL_TEST_MYSQL_DRIVER', 'pymysql')}"
    marks = config.getoption("markexpr", "") or "all"
    name = f"{time.time_ns()}-{env}-{drivers}-{marks}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


@pytest.hookimpl(tryfirst=True)  # before the junitxml plugin reads --junitxml
def pytest_configure(config: pytest.Config) -> None:
    directory = os.environ.get("POOL_TEST_RESULTS")
    if not directory or hasattr(config, "workerinput"):
        return
    os.makedirs(directory, exist_ok=True)
    run = os.path.join(directory, _run_name(config))
    config.stash[_RUN_KEY] = run
    if not config.option.xmlpath:
        config.option.xmlpath = run + ".xml"
    with open(run + ".started", "w") as f:
        f.write(f"{config.option.xmlpath}\n")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.config.stash.get(_RUN_KEY, None)
    if run is not None:
        with open(run + ".exit", "w") as f:
            f.write(f"{int(exitstatus)}\n")
