"""ENGINE ``pool_postgresql.postgis``: GeoDjango's PostGIS backend, pooled."""

from django.contrib.gis.db.backends.postgis import base

from ..base import PostgresPoolingMixin


class DatabaseWrapper(PostgresPoolingMixin, base.DatabaseWrapper):
    pool_supports_transaction_checkout = True
