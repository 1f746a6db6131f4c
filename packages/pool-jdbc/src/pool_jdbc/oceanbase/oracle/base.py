"""ENGINE ``pool_jdbc.oceanbase.oracle``: OceanBase in Oracle mode over JDBC, pooled.

Django's Oracle backend with the OceanBase JDBC driver
(``com.oceanbase.jdbc.Driver``, ``jdbc:oceanbase://HOST:PORT/NAME``).
Not exercised against a real OceanBase server by this project's CI.
"""

from __future__ import annotations

from typing import Any

from ...oracle.base import DatabaseWrapper as OracleWrapper


class DatabaseWrapper(OracleWrapper):
    jdbc_driver = "com.oceanbase.jdbc.Driver"
    jdbc_url_prefix = "jdbc:oceanbase://"
    jdbc_connect_timeout = ("connectTimeout", 1000)
    pool_vendor_name = "oceanbase-oracle+jdbc"

    def jdbc_url(self, conn_params: dict[str, Any], driver_class: str) -> str:
        options = self.settings_dict.get("OPTIONS") or {}
        if options.get("JDBC_URL"):
            return str(options["JDBC_URL"])
        host = conn_params["host"] or "127.0.0.1"
        port = f":{conn_params['port']}" if conn_params["port"] else ""
        return f"{self.jdbc_url_prefix}{host}{port}/{conn_params['database']}"
