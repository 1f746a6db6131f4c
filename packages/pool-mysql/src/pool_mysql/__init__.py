"""Pooled MySQL/MariaDB backend for Django (mysqlclient or PyMySQL). ENGINE ``pool_mysql``."""

from .__about__ import __version__
from ._driver import install_pymysql_if_needed

install_pymysql_if_needed()

__all__ = ["__version__"]
