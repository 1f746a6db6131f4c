"""Oracle-mode bridge ENGINEs without a server: they load, and build the URL / connection string.

No Oracle or OceanBase server runs on Linux CI; nothing here connects.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import load_backend

pytest.importorskip("oracledb", reason="Django's oracle backend modules need oracledb")


def _wrapper(engine: str, **overrides):
    s = {"ENGINE": engine, "NAME": "FREEPDB1", "USER": "app", "PASSWORD": "pw-not-in-url",
         "HOST": "db.example", "PORT": "1521", "OPTIONS": {}}
    s.update(overrides)
    s = connections.configure_settings({"default": connections.settings["default"], "x": s})["x"]
    return load_backend(engine).DatabaseWrapper(s, "oracle_mode_x")


@pytest.mark.parametrize("engine,overrides,url", [
    ("pool_jdbc.oracle", {}, "jdbc:oracle:thin:@//db.example:1521/FREEPDB1"),
    ("pool_jdbc.oracle", {"HOST": "", "PORT": "", "NAME": "ORCL_TNS_ALIAS"}, "jdbc:oracle:thin:@ORCL_TNS_ALIAS"),
    ("pool_jdbc.oracle", {"OPTIONS": {"JDBC_URL": "jdbc:oracle:thin:@ldap://x/y"}}, "jdbc:oracle:thin:@ldap://x/y"),
    ("pool_jdbc.oceanbase.oracle", {"PORT": "2881"}, "jdbc:oceanbase://db.example:2881/FREEPDB1"),
])
def test_jdbc_oracle_mode_urls(engine, overrides, url):
    w = _wrapper(engine, **overrides)
    params = w.get_connection_params()
    assert w.vendor == "oracle"
    assert w.jdbc_url(params, w.jdbc_driver) == url
    props = w.jdbc_properties(params)
    assert props["user"] == "app" and "threaded" not in props
    assert w.features.can_return_columns_from_insert is False


def test_jdbc_oracle_mode_driver_properties():
    w = _wrapper("pool_jdbc.oracle", OPTIONS={"CLASSPATH": ["/x/ojdbc11.jar"], "threaded": True,
                                              "oracle.net.CONNECT_TIMEOUT": 5000})
    props = w.jdbc_properties(w.get_connection_params())
    assert props["oracle.net.CONNECT_TIMEOUT"] == "5000"
    assert "CLASSPATH" not in props and "threaded" not in props


def test_odbc_oceanbase_oracle_connection_strings():
    engine = "pool_odbc.oceanbase.oracle"
    w = _wrapper(engine, OPTIONS={"DRIVER": "OceanBase ODBC", "Charset": "utf8"})
    text = w.odbc_connection_string(w.get_connection_params())
    assert text == ("DRIVER={OceanBase ODBC};SERVER=db.example;PORT=1521;DATABASE=FREEPDB1;"
                    "UID=app;PWD=pw-not-in-url;Charset=utf8")
    w = _wrapper(engine, OPTIONS={"DSN": "ob_oracle"}, PASSWORD="a;b")
    assert w.odbc_connection_string(w.get_connection_params()) == (
        "DSN=ob_oracle;DATABASE=FREEPDB1;UID=app;PWD={a;b}")
    w = _wrapper(engine)
    with pytest.raises(ImproperlyConfigured, match=r"OPTIONS\['DRIVER'\]"):
        w.odbc_connection_string(w.get_connection_params())
