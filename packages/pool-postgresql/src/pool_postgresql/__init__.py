"""Pooled PostgreSQL backend for Django (psycopg 3 or psycopg2).

ENGINE ``pool_postgresql``; also ``pool_postgresql.postgis`` and
``pool_postgresql.django_tenants``.
"""

from .__about__ import __version__

__all__ = ["__version__"]
