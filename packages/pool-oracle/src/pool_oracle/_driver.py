"""python-oracledb / cx_Oracle hooks for the pool, and the DSN forms.

Django 5.2's ``oracledb_any`` picks the driver: oracledb if importable,
else cx_Oracle. Django 6 dropped cx_Oracle: there it is always oracledb.
"""

from __future__ import annotations

from typing import Any

try:  # Django 5.2: oracledb, else cx_Oracle
    from django.db.backends.oracle.oracledb_any import is_oracledb
    from django.db.backends.oracle.oracledb_any import oracledb as Database
except ImportError:  # Django 6 supports oracledb only
    import oracledb as Database

    is_oracledb = True

from pool_core.hooks import PoolHooks, TransactionState

__all__ = ["Database", "OracleHooks", "build_dsn", "is_oracledb"]


def build_dsn(settings_dict: dict[str, Any]) -> str:
    """The DSN for a settings dict.

    - HOST, PORT and ``OPTIONS['service_name']``: a service-name descriptor;
    - HOST, PORT and NAME: NAME is the SID (Django's own meaning);
    - no PORT: NAME is used as is (a full descriptor, Easy Connect
      ``host:port/service``, or a TNS alias from tnsnames.ora).
    """
    service = (settings_dict.get("OPTIONS") or {}).get("service_name")
    if settings_dict.get("PORT"):
        host = (settings_dict.get("HOST") or "").strip() or "localhost"
        if service:
            return str(Database.makedsn(host, int(settings_dict["PORT"]), service_name=service))
        return str(Database.makedsn(host, int(settings_dict["PORT"]), settings_dict["NAME"]))
    if service and settings_dict.get("HOST"):
        return f"{settings_dict['HOST'].strip()}/{service}"
    return str(settings_dict["NAME"])


class OracleHooks(PoolHooks):
    """Driver-level hooks: local state only, except the ping."""

    pool_vendor_name = "oracle+oracledb" if is_oracledb else "oracle+cx_oracle"

    @staticmethod
    def pool_transaction_state(dbapi_connection: Any) -> TransactionState:
        healthy = getattr(dbapi_connection, "is_healthy", None)
        if callable(healthy) and not healthy():
            return TransactionState.BROKEN
        in_progress = getattr(dbapi_connection, "transaction_in_progress", None)
        if in_progress is None:  # cx_Oracle: unknown, so the pool rolls back
            return TransactionState.UNKNOWN
        return TransactionState.IN_TRANSACTION if in_progress else TransactionState.IDLE

    @staticmethod
    def pool_ping(dbapi_connection: Any) -> bool:
        dbapi_connection.ping()
        return True

    @staticmethod
    def pool_fileno(dbapi_connection: Any) -> int | None:
        # The driver does not expose its socket: after a fork the child keeps
        # the object alive and never touches it (pool_core._fork).
        return None
