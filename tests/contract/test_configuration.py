"""Bad settings surface early, as Django errors, and never show the password."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import OperationalError

import pool_core

SECRET = "s3cr3t-Pa55-w0rd"


@pytest.mark.parametrize("pool_options,key", [({"POOL_SIZE": 0}, "POOL_SIZE"),
                                              ({"NOPE": 1}, "NOPE"),
                                              ({"TIMEOUT": "30"}, "TIMEOUT")])
def test_bad_pool_options_fail_on_first_use_naming_alias_and_key(engine, pool_options, key):
    alias = engine.make_alias(pool_options)
    with pytest.raises(ImproperlyConfigured) as info:
        connections[alias].ensure_connection()
    assert repr(alias) in str(info.value) and key in str(info.value)
    # Nothing was half-created: fixing the setting makes it work.
    connections[alias].settings_dict["POOL_OPTIONS"] = {"POOL_SIZE": 1}
    assert engine.backend_id(alias) > 0


def test_unreachable_server_is_a_django_error_without_password(engine, caplog):
    alias = engine.make_alias({"POOL_SIZE": 1, "TIMEOUT": 5}, HOST="127.0.0.1", PORT=1, PASSWORD=SECRET)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OperationalError) as info:
        connections[alias].ensure_connection()
    assert type(info.value).__module__ == "django.db.utils"
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text
    # The failed connect did not consume a slot.
    assert pool_core.stats(alias)["connections_open"] == 0


def test_password_never_in_repr_stats_or_logs(engine, caplog):
    alias = engine.make_alias({"POOL_SIZE": 1, "ECHO": "debug"}, PASSWORD=SECRET)
    caplog.set_level(logging.DEBUG)
    if engine.vendor == "postgresql":
        # trust authentication ignores the password; the driver still carries it.
        engine.backend_id(alias)
    else:
        try:
            engine.backend_id(alias)
        except OperationalError as e:  # root has no such password: access denied
            assert SECRET not in str(e)
    connections[alias].close()
    from pool_core.registry import all_pools

    pool = all_pools()[alias]
    assert SECRET not in repr(pool)
    assert SECRET not in repr(pool_core.stats())
    assert SECRET not in caplog.text


def test_connect_timeout_reaches_the_driver_unless_options_set_one(engine):
    """CONNECT_TIMEOUT becomes the driver's connect_timeout; OPTIONS['connect_timeout'] wins."""
    from pool_core.options import parse_options

    assert parse_options("x", {"CONNECT_TIMEOUT": 1.5}).connect_timeout == 1.5
    assert parse_options("x", {"CONNECT_TIMEOUT": None}).connect_timeout is None
    wrapper = type(connections[engine.alias])
    params = wrapper.pool_connect_timeout_params({}, 0.5)
    assert params["connect_timeout"] == (2 if engine.vendor == "postgresql" else 1)  # whole seconds, libpq's minimum
    assert wrapper.pool_connect_timeout_params({"connect_timeout": 9}, 3)["connect_timeout"] == 9
    alias = engine.make_alias({"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "CONNECT_TIMEOUT": 3})
    engine.backend_id(alias)  # connects with it
    connections[alias].close()
