"""Settings of the small Django site the process-model scenarios serve.

Built from environment variables set by tests/reliability/test_process_models.py:
POOL_SITE_DB (the DATABASES['default'] dict as JSON), POOL_SITE_LOG (a folder;
each process appends one line per request to <pid>.log there),
POOL_SITE_PG_DRIVER (psycopg | psycopg2), POOL_SITE_MYSQL_DRIVER (pymysql | mysqlclient).
"""

import faulthandler
import json
import os
import signal
import sys

# Every thread's stack goes to stderr if the server crashes (a fatal signal), and when
# the tests send SIGUSR1 to a server that stops answering.
faulthandler.enable(all_threads=True)
faulthandler.register(signal.SIGUSR1, all_threads=True)

if os.environ.get("POOL_SITE_PG_DRIVER") == "psycopg2":
    sys.modules.setdefault("psycopg", None)  # Django falls back to psycopg2
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("socket"):
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()  # psycopg2 waits through gevent's hub
if os.environ.get("POOL_SITE_MYSQL_DRIVER", "pymysql") == "pymysql":
    import pymysql

    pymysql.install_as_MySQLdb()

SECRET_KEY = "reliability-tests-only"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES = {"default": json.loads(os.environ["POOL_SITE_DB"])}
INSTALLED_APPS = ["django.contrib.contenttypes", "tests.testapp"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.reliability.webapp.urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
