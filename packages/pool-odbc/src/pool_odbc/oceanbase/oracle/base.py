"""ENGINE ``pool_odbc.oceanbase.oracle``: OceanBase in Oracle mode over ODBC, pooled.

Django's Oracle backend (its modules import oracledb: ``pip install
pool-odbc[oracle]``) with connections through the OceanBase ODBC driver:
set ``OPTIONS['DRIVER']`` (its name in odbcinst.ini), ``OPTIONS['DSN']`` or
``OPTIONS['CONNECTION_STRING']``. Not exercised against a real OceanBase
server by this project's CI.
"""

from __future__ import annotations

from django.db.backends.oracle import base

from pool_core.bridge.oracle import OracleBridgeMixin, OracleBridgePoolHooks
from pool_core.mixin import PoolingMixin

from ..._driver import ODBCWrapperMixin


class ODBCOceanBaseOracleWrapper(ODBCWrapperMixin, OracleBridgeMixin, base.DatabaseWrapper):
    odbc_driver = ""  # no widely agreed name: OPTIONS['DRIVER'] is required


class DatabaseWrapper(OracleBridgePoolHooks, PoolingMixin, ODBCOceanBaseOracleWrapper):
    pool_vendor_name = "oceanbase-oracle+odbc"
