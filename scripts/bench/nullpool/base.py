"""ENGINE for overhead.py: the cheapest possible 'pool' that returns connections at request end.

Each thread caches one connection forever; Django's connect() gets it back and
close() keeps it. What is left is Django's own connect()/close() work around a
request, which any pool that hands connections back at request end must pay.
"""

import threading

from django.db.backends.postgresql import base

_tls = threading.local()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        conn = getattr(_tls, "conn", None)
        if conn is None:
            conn = _tls.conn = super().get_new_connection(conn_params)
            self._nullpool_fresh = True
        return conn

    def init_connection_state(self):
        if getattr(self, "_nullpool_fresh", False):
            super().init_connection_state()
            self._nullpool_fresh = False

    def _close(self):
        pass  # keep it: the next connect() of this thread gets it back
