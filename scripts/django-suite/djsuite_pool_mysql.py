"""runtests.py settings: ENGINE pool_mysql (configuration 'pool_mysql' of run.sh)."""

from djsuite_common import *  # noqa: F403
from djsuite_common import databases

DATABASES = databases("mysql", "pool_mysql", config="pool_mysql", pooled=True)
