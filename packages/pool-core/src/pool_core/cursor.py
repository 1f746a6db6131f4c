"""A DB-API cursor proxy converting Django's parameter styles for drivers that need it.

Django writes ``%s`` with a sequence and ``%(name)s`` with a mapping (and
``%%`` for a literal percent sign). Drivers such as JDBC (via JPype) and ODBC
take ``?`` placeholders; this proxy rewrites SQL and parameters with sqlparams.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from typing import Any

__all__ = ["ParamStyleCursor", "convert"]


@cache
def _converter(in_style: str, out_style: str) -> Any:
    import sqlparams

    return sqlparams.SQLParams(in_style, out_style, escape_char=True)


@lru_cache(maxsize=2048)
def _has_placeholder(sql: str) -> bool:
    return "%" in sql


def convert(sql: str, params: Any, out_style: str) -> tuple[str, Any]:
    """Rewrite (*sql*, *params*) from Django's format/pyformat to *out_style*."""
    if params is None:
        # No parameters: only unescape "%%", as the driver would not.
        return (sql.replace("%%", "%") if _has_placeholder(sql) else sql), params
    in_style = "pyformat" if isinstance(params, Mapping) else "format"
    if in_style == "format" and not isinstance(params, (list, tuple)):
        params = list(params)
    return _converter(in_style, out_style).format(sql, params)  # type: ignore[no-any-return]


class ParamStyleCursor:
    """Proxy a DB-API cursor, converting placeholders to *paramstyle*."""

    def __init__(self, cursor: Any, paramstyle: str) -> None:
        self._cursor = cursor
        self._style = paramstyle

    def execute(self, sql: str, params: Any = None) -> Any:
        sql, params = convert(sql, params, self._style)
        if params is None:
            return self._cursor.execute(sql)
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, param_list: Iterable[Any]) -> Any:
        rows = list(param_list)
        if not rows:
            return None
        converted = [convert(sql, p, self._style) for p in rows]
        return self._cursor.executemany(converted[0][0], [p for _, p in converted])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __enter__(self) -> ParamStyleCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._cursor.close()
