"""POOL_OPTIONS validation: one clear ImproperlyConfigured naming alias and key."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

import pool_core
from pool_core.options import PoolOptions, parse_options

BAD = [
    ({"POOL_SIZ": 3}, "POOL_SIZ", "unknown key"),
    ({"POOL_SIZE": "10"}, "POOL_SIZE", "must be an integer"),
    ({"POOL_SIZE": 2.5}, "POOL_SIZE", "must be an integer"),
    ({"POOL_SIZE": True}, "POOL_SIZE", "must be an integer"),
    ({"POOL_SIZE": 0}, "POOL_SIZE", "must be >= 1"),
    ({"POOL_SIZE": -1}, "POOL_SIZE", "must be >= 1"),
    ({"MAX_OVERFLOW": -2}, "MAX_OVERFLOW", "must be >= -1"),
    ({"TIMEOUT": 0}, "TIMEOUT", "> 0"),
    ({"TIMEOUT": -1}, "TIMEOUT", "> 0"),
    ({"TIMEOUT": None}, "TIMEOUT", "number of seconds"),
    ({"TIMEOUT": float("nan")}, "TIMEOUT", "finite"),
    ({"RECYCLE": 0}, "RECYCLE", "> 0"),
    ({"RECYCLE": "1h"}, "RECYCLE", "number of seconds or None"),
    ({"PRE_PING": "yes"}, "PRE_PING", "True or False"),
    ({"PRE_PING_IDLE": -0.1}, "PRE_PING_IDLE", ">= 0"),
    ({"ECHO": 1}, "ECHO", "True, False or 'debug'"),
    ({"pool_size": 1, "POOL_SIZE": 2}, "POOL_SIZE", "twice"),
    ({"CONNECT_TIMEOUT": 0}, "CONNECT_TIMEOUT", "> 0"),
    ({"CONNECT_TIMEOUT": 1e300}, "CONNECT_TIMEOUT", "<="),
    ({"CONNECT_TIMEOUT": float("inf")}, "CONNECT_TIMEOUT", "finite"),
    ({"CONNECT_TIMEOUT": float("-inf")}, "CONNECT_TIMEOUT", "finite"),
    ({"TIMEOUT": 1e300}, "TIMEOUT", "<="),
    ({"LEAK_DETECTION_THRESHOLD": 1e300}, "LEAK_DETECTION_THRESHOLD", "<="),
    ({"CONNECT_TIMEOUT": "5"}, "CONNECT_TIMEOUT", "number of seconds or None"),
    ({"VALIDATION_TIMEOUT": 0}, "VALIDATION_TIMEOUT", "> 0"),
    ({"VALIDATION_TIMEOUT": "5"}, "VALIDATION_TIMEOUT", "number of seconds or None"),
    ({"QUERY_TIMEOUT": 0}, "QUERY_TIMEOUT", "> 0"),
    ({"QUERY_TIMEOUT": -2}, "QUERY_TIMEOUT", "> 0"),
    ({"QUERY_TIMEOUT": float("inf")}, "QUERY_TIMEOUT", "finite"),
    ({"IDLE_TIMEOUT": -0.5}, "IDLE_TIMEOUT", ">= 0"),
    ({"IDLE_TIMEOUT": "10m"}, "IDLE_TIMEOUT", "number of seconds or None"),
    ({"IDLE_TIMEOUT": float("inf")}, "IDLE_TIMEOUT", "finite"),
    ({"MAX_WAITING": -1}, "MAX_WAITING", "must be >= 0"),
    ({"MAX_WAITING": 2.0}, "MAX_WAITING", "must be an integer"),
    ({"MIN_IDLE": -1}, "MIN_IDLE", "must be >= 0"),
    ({"KEEPALIVE_TIME": 0}, "KEEPALIVE_TIME", "> 0"),
    ({"KEEPALIVE_TIME": "1m"}, "KEEPALIVE_TIME", "number of seconds or None"),
    ({"POOL_SIZE": 2, "MAX_OVERFLOW": 1, "MIN_IDLE": 4}, "MIN_IDLE", "<= POOL_SIZE + MAX_OVERFLOW (3)"),
    ({"INIT_FAIL_TIMEOUT": -2}, "INIT_FAIL_TIMEOUT", ">= 0"),
    ({"INIT_FAIL_TIMEOUT": "5s"}, "INIT_FAIL_TIMEOUT", "number of seconds or None"),
    ({"MAX_OVERFLOW": -1, "KEEPALIVE_TIME": 30}, "KEEPALIVE_TIME", "needs a bounded pool"),
    ({"MAX_OVERFLOW": -1, "POOL_SIZE": 10, "MIN_IDLE": 50}, "MIN_IDLE", "<= POOL_SIZE (10) with MAX_OVERFLOW=-1"),
]


@pytest.mark.parametrize("raw,key,words", BAD, ids=[f"{k}-{w}" for _, k, w in BAD])
def test_bad_option_names_alias_and_key(raw, key, words):
    with pytest.raises(ImproperlyConfigured) as info:
        parse_options("reporting", raw)
    message = str(info.value)
    assert "DATABASES['reporting']" in message
    assert key in message
    assert words in message


@pytest.mark.parametrize("raw", [[("POOL_SIZE", 1)], [], "", 0, False, ()])
def test_pool_options_must_be_a_dict(raw):
    """Also an empty or false value of another type: it is a mistake, not "no options"."""
    with pytest.raises(ImproperlyConfigured, match=r"DATABASES\['x'\]: POOL_OPTIONS must be a dict"):
        parse_options("x", raw)


def test_a_conflict_with_a_setup_default_names_where_the_value_came_from():
    try:
        pool_core.setup(min_idle=15)
        with pytest.raises(ImproperlyConfigured) as info:
            parse_options("reports", {"POOL_SIZE": 2, "MAX_OVERFLOW": 0})
        assert str(info.value) == (
            "DATABASES['reports']: MIN_IDLE (from pool_core.setup()) must be <= POOL_SIZE + MAX_OVERFLOW (2), got 15."
        )
    finally:
        pool_core.reset_defaults()


def test_predecessor_keys_and_lower_case_are_accepted():
    o = parse_options("default", {"POOL_SIZE": 3, "max_overflow": 0, "RECYCLE": 900, "PRE_PING": False,
                                  "ECHO": False, "TIMEOUT": 5})
    assert (o.pool_size, o.max_overflow, o.recycle, o.pre_ping, o.echo, o.timeout) == (3, 0, 900.0, False, False, 5.0)
    assert o.max_connections == 3
    assert parse_options("default", {"RECYCLE": -1}).recycle is None
    assert parse_options("default", {"MAX_OVERFLOW": -1}).max_connections is None


def test_defaults():
    assert parse_options("default", None) == PoolOptions()


def test_idle_timeout_values():
    """IDLE_TIMEOUT: seconds (HikariCP's idleTimeout default), None/-1 never, 0 on return."""
    assert PoolOptions().idle_timeout == 600.0
    assert parse_options("default", {"IDLE_TIMEOUT": None}).idle_timeout is None
    assert parse_options("default", {"idle_timeout": -1}).idle_timeout is None
    assert parse_options("default", {"IDLE_TIMEOUT": 0}).idle_timeout == 0.0
    assert parse_options("default", {"IDLE_TIMEOUT": 30}).idle_timeout == 30.0


def test_setup_changes_defaults_and_validates():
    try:
        pool_core.setup(pool_size=4, MAX_OVERFLOW=1)
        o = parse_options("default", {"TIMEOUT": 3})
        assert (o.pool_size, o.max_overflow, o.timeout) == (4, 1, 3.0)
        with pytest.raises(ImproperlyConfigured, match=r"pool_core.setup\(\): POOL_OPTIONS\['pool_size'\]"):
            pool_core.setup(pool_size=0)
        with pytest.raises(ImproperlyConfigured, match="unknown key"):
            pool_core.setup(poolsize=4)
    finally:
        pool_core.reset_defaults()


def test_checkout_option_is_validated():
    with pytest.raises(ImproperlyConfigured, match=r"POOL_OPTIONS\['CHECKOUT'\] must be 'request' or 'transaction'"):
        parse_options("x", {"CHECKOUT": "statement"})
    assert parse_options("x", {"checkout": "transaction"}).checkout == "transaction"
    assert parse_options("x", {}).checkout == "request"
