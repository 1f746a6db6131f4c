"""ENGINE ``pool_postgresql.django_tenants``: django-tenants' backend, pooled.

Set ``ORIGINAL_BACKEND = "django.contrib.gis.db.backends.postgis"`` for
tenants on PostGIS, as with django-tenants itself. A pooled connection may
have served another tenant: the search_path is always set again after
checkout, before the first query.
"""

from __future__ import annotations

from typing import Any

from django_tenants.postgresql_backend import base

from ..base import PostgresPoolingMixin


class DatabaseWrapper(PostgresPoolingMixin, base.DatabaseWrapper):
    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        super().pool_adopt_connection(dbapi_connection)
        self.search_path_set_schemas = None
        self._setting_search_path = False
