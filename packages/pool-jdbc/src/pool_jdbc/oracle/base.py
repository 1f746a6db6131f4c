"""ENGINE ``pool_jdbc.oracle``: Django's Oracle backend over JDBC (ojdbc), pooled.

Django's oracle backend modules import oracledb (``pip install
pool-jdbc[oracle]``; thin mode, no Oracle client); connections are JDBC.
URL: ``jdbc:oracle:thin:@//HOST:PORT/NAME`` (NAME = service name) when
HOST and PORT are set, else ``jdbc:oracle:thin:@NAME`` (TNS alias or full
descriptor), or ``OPTIONS['JDBC_URL']``. Not exercised against a real Oracle
server by this project's CI (see the README).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.oracle import base

from pool_core.bridge.oracle import OracleBridgeMixin, OracleBridgePoolHooks
from pool_core.mixin import PoolingMixin

from .._driver import JDBCWrapperMixin


class JDBCOracleWrapper(JDBCWrapperMixin, OracleBridgeMixin, base.DatabaseWrapper):
    jdbc_driver = "oracle.jdbc.OracleDriver"
    jdbc_url_prefix = "jdbc:oracle:thin:@"
    jdbc_connect_timeout = ("oracle.net.CONNECT_TIMEOUT", 1000)

    def jdbc_url(self, conn_params: dict[str, Any], driver_class: str) -> str:
        options = self.settings_dict.get("OPTIONS") or {}
        if options.get("JDBC_URL"):
            return str(options["JDBC_URL"])
        if conn_params["host"] and conn_params["port"]:
            return f"{self.jdbc_url_prefix}//{conn_params['host']}:{conn_params['port']}/{conn_params['database']}"
        return f"{self.jdbc_url_prefix}{conn_params['database']}"


class DatabaseWrapper(OracleBridgePoolHooks, PoolingMixin, JDBCOracleWrapper):
    pool_vendor_name = "oracle+jdbc"
    pool_init_once = True
