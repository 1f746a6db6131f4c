"""Hide a password in text shown to people (errors, logs, pool_status).

Pure code: no driver, no Django settings. One function, used wherever a
driver's or server's text may carry the password.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

__all__ = ["MASK", "mask_exception", "mask_password", "mask_pool_logs"]

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


def mask_credentials(text: str, password: Any = None) -> str:
    """Return *text* with every value in a password position masked, whatever the password.

    For text built from settings where a password may sit without PASSWORD
    being set (a JDBC URL's ``password=``, a DSN's ``user:password@``, an ODBC
    ``PWD={...}``, an Oracle ``user/password@`` connect string). A known
    *password* (PASSWORD) is masked first as by mask_password().
    """
    text = mask_password(text, password)
    text = re.sub(_KEY + r"\{[^}]*\}", lambda m: m.group("key") + "{" + MASK + "}", text, flags=re.IGNORECASE)
    text = re.sub(
        _KEY + r"""(?P<q>['"])(?:(?!(?P=q)).)*(?P=q)""",
        lambda m: m.group("key") + m.group("q") + MASK + m.group("q"),
        text,
        flags=re.IGNORECASE,
    )
    text = re.sub(
        _KEY + r"""(?!['"{])[^\s;&,)\]}'"]+""", lambda m: m.group("key") + MASK, text, flags=re.IGNORECASE
    )
    text = re.sub(r"(?P<user>://[^\s/:@]*:)[^\s/@]+(?=@)", lambda m: m.group("user") + MASK, text)
    # Oracle's user/password@connect_string, also after "thin:" or "user@"
    return re.sub(
        r"""(?P<user>(?:^|[\s'"(@:])[^\s/@:'"()]+/)[^\s/@'"]+(?=@)""", lambda m: m.group("user") + MASK, text
    )


def mask_exception(error: BaseException, password: Any) -> None:
    """Mask *password* in *error*'s string arguments, in place.

    For a driver's error kept as the ``__cause__`` of the Django error raised
    from it: a traceback (Django's debug page, Sentry, a log's exc_info) shows
    it with ``str()``, which drivers build from the arguments; its other
    attributes (SQLSTATE, error codes) stay as they are.
    """
    try:
        args = error.args
        masked = tuple(mask_password(a, password) if isinstance(a, str) else a for a in args)
        if masked != args:
            error.args = masked
    except Exception:  # an exception type with read-only args: its text stays the driver's
        pass


#: SQLAlchemy's pool logger (ECHO, or "sqlalchemy" logging set to DEBUG); each
#: alias's pool logs to a child named after the alias when ECHO is on.
_SQLA_POOL_LOGGER = "sqlalchemy.pool.impl.QueuePool"


class _PoolLogMask(logging.Filter):
    """Masks the passwords of the aliases' pools in what SQLAlchemy's pool loggers log.

    SQLAlchemy logs a failed connect as "Error on connect(): <the driver's
    message>", which can quote the password back (a database name the server
    echoes). A record of an alias's own logger is masked with that alias's
    password; one of the shared logger with every password known.
    """

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[str, Any] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        passwords = self.passwords
        if not passwords:
            return True
        own = passwords.get(record.name[len(_SQLA_POOL_LOGGER) + 1 :])
        text = masked = record.getMessage()
        for password in [own] if own else set(passwords.values()):
            masked = mask_password(masked, password)
        if masked != text:
            record.msg, record.args = masked, None
        return True


_pool_log_mask = _PoolLogMask()


def mask_pool_logs(alias: str, password: Any) -> None:
    """Mask *password* in what SQLAlchemy's pool loggers log for *alias* (idempotent)."""
    if not password:
        return
    if _pool_log_mask.passwords.get(alias) == password:
        return
    _pool_log_mask.passwords[alias] = password
    for name in (_SQLA_POOL_LOGGER, f"{_SQLA_POOL_LOGGER}.{alias}"):
        logger = logging.getLogger(name)
        if _pool_log_mask not in logger.filters:
            logger.addFilter(_pool_log_mask)
