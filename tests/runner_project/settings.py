"""Settings for running Django's test runner on a pooled ENGINE (see test_django_runner.py)."""

import json
import os

if os.environ.get("RUNNER_MYSQL_DRIVER") == "pymysql":
    import pymysql

    pymysql.install_as_MySQLdb()

_db = json.loads(os.environ["RUNNER_DB"])
DATABASES = {"default": _db, "other": {**_db, "TEST": {"NAME": _db["TEST"]["NAME"] + "_other"}}}
INSTALLED_APPS = ["django.contrib.contenttypes", "tests.runner_project.runnerapp"]
SECRET_KEY = "runner-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
