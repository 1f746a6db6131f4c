"""ENGINE ``pool_jdbc.oceanbase.mysql``: OceanBase in MySQL mode over JDBC, pooled.

Django's MySQL backend with the OceanBase JDBC driver
(``com.oceanbase.jdbc.Driver``, ``jdbc:oceanbase://``) by default; MySQL
mode also speaks the MariaDB protocol, so
``OPTIONS['JDBC_DRIVER'] = 'org.mariadb.jdbc.Driver'`` works too.
"""

from __future__ import annotations

from ...mysql.base import DatabaseWrapper as MySQLWrapper


class DatabaseWrapper(MySQLWrapper):
    jdbc_driver = "com.oceanbase.jdbc.Driver"
    jdbc_url_prefix = "jdbc:oceanbase://"
    pool_vendor_name = "oceanbase-mysql+jdbc"
