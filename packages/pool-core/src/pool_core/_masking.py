"""Hide a password in text shown to people (errors, logs, pool_status).

Pure code: no driver, no Django settings. One function, used wherever a
driver's or server's text may carry the password.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

__all__ = ["MASK", "mask_password"]

MASK = "********"

# A key that announces a password: password, passwd, pwd, pass (ODBC, libpq,
# JDBC properties, dict reprs), optionally quoted, then "=" or ":".
_KEY = r"""(?P<key>['"]?\b(?:password|passwd|pwd|pass)\b['"]?\s*[=:]\s*)"""
# What may follow a value in a key/value position.
_VALUE_END = r"""(?=$|[\s;&,)\]}'"])"""


def _variants(password: str) -> list[str]:
    """The password as drivers spell it: raw, URL-quoted, ODBC {}-escaped, libpq-quoted."""
    spelled = [
        password,
        quote(password, safe=""),
        password.replace("}", "}}"),
        password.replace("\\", "\\\\").replace("'", "\\'"),
    ]
    return sorted(set(spelled), key=len, reverse=True)


def _distinctive(password: str) -> bool:
    """True for a password no unrelated text plausibly contains.

    At least 8 characters with letters and something else (digits, symbols):
    masked wherever it appears. A short or word-like password ("a", "root",
    "postgres", "password") is masked only where it stands as the password,
    so "database" or "(using password: YES)" stay readable.
    """
    return (
        len(password) >= 8 and any(c.isalpha() for c in password) and any(not c.isalpha() for c in password)
    )


def mask_password(text: str, password: Any) -> str:
    """Return *text* with *password* replaced by ``********`` where it appears as one.

    Password positions: a DSN's ``user:password@``, ``password=...`` /
    ``passwd=`` / ``pwd=`` / ``pass:`` pairs (any case, quoted or in ODBC
    braces, as in conninfo strings, ODBC connection strings, JDBC properties
    and dict reprs). A distinctive password (see ``_distinctive``) is masked
    everywhere as well. Text without the password is returned unchanged.
    """
    if isinstance(password, bytes):
        password = password.decode("utf-8", "replace")
    if not isinstance(password, str) or not password or not text:
        return text
    for spelled in _variants(password):
        if spelled not in text:
            continue
        value = re.escape(spelled)
        # key=value, key='value', key="value", key={value}
        text = re.sub(
            _KEY + r"(?P<quote>['\"{]?)" + value + _VALUE_END,
            lambda m: m.group("key") + m.group("quote") + MASK,
            text,
            flags=re.IGNORECASE,
        )
        # scheme://user:password@host
        text = re.sub(r"(?P<user>://[^\s/:@]*:)" + value + r"(?=@)", lambda m: m.group("user") + MASK, text)
        if _distinctive(password):
            text = text.replace(spelled, MASK)
    return text
