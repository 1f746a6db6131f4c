"""runtests.py settings: ENGINE django.db.backends.mysql (configuration 'mysql' of run.sh)."""

from djsuite_common import *  # noqa: F403
from djsuite_common import databases

DATABASES = databases("mysql", "django.db.backends.mysql", config="mysql", pooled=False)
