"""Converting Django's parameter styles for drivers that need it.

Django writes ``%s`` with a sequence and ``%(name)s`` with a mapping (and
``%%`` for a literal percent sign). Drivers such as JDBC (via JPype) and ODBC
take ``?`` placeholders; convert() rewrites SQL and parameters with sqlparams.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

__all__ = ["convert"]


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
