"""runtests.py settings: ENGINE django.db.backends.postgresql (configuration 'pg' of run.sh)."""

from djsuite_common import *  # noqa: F403
from djsuite_common import databases

DATABASES = databases("postgresql", "django.db.backends.postgresql", config="pg", pooled=False)
