"""Pooled MySQL/MariaDB backend for Django (mysqlclient or PyMySQL). ENGINE ``pool_mysql``."""

from pool_core.hooks import install_mysqldb_if_needed

from .__about__ import __version__

install_mysqldb_if_needed(missing_ok=False)

__all__ = ["__version__"]
