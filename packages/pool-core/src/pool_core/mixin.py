"""The DatabaseWrapper mixin that puts a pool under any Django backend.

Put it first in the bases: ``class DatabaseWrapper(PoolingMixin, base.DatabaseWrapper)``.
Vendors override the ``pool_*`` static hooks; everything else is shared.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import NotSupportedError
from django.utils.asyncio import async_unsafe

from . import registry
from .options import parse_options
from .pool import UNKNOWN, AliasPool

NO_DB_ALIAS = "__no_db__"
_INIT_DONE = "django_init"


class PoolingMixin:
    """Checks connections out of the alias's pool instead of opening them.

    Django's ``close()`` (end of request, ``close_old_connections``) returns
    the connection to the pool; it is rolled back there if a transaction is
    open and discarded if broken. Django's per-connection set-up
    (``init_connection_state``) runs once per physical connection.
    """

    #: Name used in logs and stats.
    pool_vendor_name = "database"
    #: Skip init_connection_state on reused connections (False where the
    #: wrapper keeps per-instance state computed there, e.g. Oracle).
    pool_init_once = True

    _pool_fairy: Any = None
    _pool_current: AliasPool | None = None

    # -- vendor hooks -------------------------------------------------------

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> int:
        """IDLE, IN_TRANSACTION, BROKEN or UNKNOWN (unknown means: roll back)."""
        return UNKNOWN

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        finally:
            cursor.close()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
        fileno = getattr(dbapi_connection, "fileno", None)
        return fileno() if callable(fileno) else None

    @staticmethod
    def pool_reset_session(dbapi_connection: Any) -> None:
        raise NotSupportedError("RESET_SESSION is not supported by this backend.")

    def pool_key_extra(self) -> tuple[Any, ...]:
        """Settings besides conn_params that a pooled connection depends on."""
        return (getattr(self, "timezone_name", None),)

    def pool_adopt_connection(self, dbapi_connection: Any) -> None:
        """Set per-wrapper state for a connection another wrapper opened."""

    def pool_description(self, conn_params: dict[str, Any]) -> str:
        s = self.settings_dict  # type: ignore[attr-defined]
        where = s.get("HOST") or "local"
        if s.get("PORT"):
            where = f"{where}:{s['PORT']}"
        user = f"{s['USER']}@" if s.get("USER") else ""
        return f"{self.pool_vendor_name} {user}{where}/{s.get('NAME') or ''}"

    # -- Django hooks --------------------------------------------------------

    def check_settings(self) -> None:
        super().check_settings()  # type: ignore[misc]
        s = self.settings_dict  # type: ignore[attr-defined]
        if s.get("OPTIONS", {}).get("pool"):
            raise ImproperlyConfigured(
                f"DATABASES[{self.alias!r}]: OPTIONS['pool'] enables Django's own "  # type: ignore[attr-defined]
                "psycopg pool, which cannot be combined with this ENGINE; "
                "configure POOL_OPTIONS instead."
            )

    @property
    def pool_options(self) -> Any:
        return parse_options(self.alias, self.settings_dict.get("POOL_OPTIONS"))  # type: ignore[attr-defined]

    def _pool_connect_physical(self, conn_params: dict[str, Any]) -> Any:
        return super().get_new_connection(conn_params)  # type: ignore[misc]

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if self.alias == NO_DB_ALIAS:  # type: ignore[attr-defined]
            # CREATE/DROP DATABASE (test runner) must not find our idle
            # sessions on the database it creates, clones or drops.
            registry.close_idle()
            return super().get_new_connection(conn_params)  # type: ignore[misc]
        key = registry.pool_key(conn_params, self.pool_key_extra(), self.settings_dict.get("POOL_OPTIONS"))  # type: ignore[attr-defined]
        pool = registry.get_existing(self.alias)  # type: ignore[attr-defined]
        if pool is None or pool.key != key:
            template = self

            def connect() -> Any:
                wrapper = registry.current_wrapper() or template
                return wrapper._pool_connect_physical(conn_params)

            pool = registry.get_pool(self, key, connect, self.pool_description(conn_params))
        registry._tls.wrapper = self
        try:
            fairy = pool.checkout()
        finally:
            registry._tls.wrapper = None
        self._pool_fairy = fairy
        self._pool_current = pool
        dbapi_connection = fairy.dbapi_connection
        self.pool_adopt_connection(dbapi_connection)
        return dbapi_connection

    def init_connection_state(self) -> None:
        fairy = self._pool_fairy
        if fairy is None or not self.pool_init_once:
            super().init_connection_state()  # type: ignore[misc]
            return
        info = fairy.info
        if info.get(_INIT_DONE):
            return
        super().init_connection_state()  # type: ignore[misc]
        info[_INIT_DONE] = True

    def _close(self) -> None:
        fairy = self._pool_fairy
        if fairy is None:
            super()._close()  # type: ignore[misc]
            return
        pool = self._pool_current
        dbapi_connection = self.connection  # type: ignore[has-type]
        self._pool_fairy = None
        self._pool_current = None
        # The connection belongs to the pool again: this wrapper must not
        # touch it, even if Django keeps the wrapper inside an atomic block.
        self.connection = None
        assert pool is not None
        pool.give_back(fairy, dbapi_connection, self.errors_occurred)  # type: ignore[attr-defined]

    def _pool_detach_after_fork(self) -> None:
        """In a forked child: drop the inherited checkout without using it."""
        fairy = self._pool_fairy
        if fairy is None:
            return
        pool = self._pool_current
        from . import _fork

        fairy.info["foreign"] = True
        _fork.neutralize(fairy.dbapi_connection, type(self).pool_fileno)
        self._pool_fairy = None
        self._pool_current = None
        self.connection = None
        self.in_atomic_block = False
        self.savepoint_ids: list[str] = []
        self.atomic_blocks: list[Any] = []
        self.needs_rollback = False
        self.closed_in_transaction = False
        del pool


__all__ = ["PoolingMixin"]
