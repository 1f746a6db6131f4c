"""runtests.py settings: ENGINE pool_postgresql (configuration 'pool_pg' of run.sh)."""

from djsuite_common import *  # noqa: F403
from djsuite_common import databases

DATABASES = databases("postgresql", "pool_postgresql", config="pool_pg", pooled=True)
