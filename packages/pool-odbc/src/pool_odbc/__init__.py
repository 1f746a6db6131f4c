"""Pooled Django backends over ODBC (pyodbc).

ENGINEs ``pool_odbc.postgresql``, ``pool_odbc.mysql``, ``pool_odbc.oceanbase.oracle``.
"""

from .__about__ import __version__

__all__ = ["__version__"]
