"""Pooled Oracle backend for Django (python-oracledb, or cx_Oracle). ENGINE ``pool_oracle``."""

from .__about__ import __version__

__all__ = ["__version__"]
