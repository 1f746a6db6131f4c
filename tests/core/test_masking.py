"""The password is hidden where it stands as the password, and nowhere else."""

from __future__ import annotations

import pytest

from pool_core._masking import MASK, mask_credentials, mask_password

SECRET = "s3cr3t-Pa55-w0rd"


@pytest.mark.parametrize(
    "text,expected",
    [
        # Forms drivers and servers print: conninfo, ODBC strings, JDBC
        # properties, dict reprs, URLs.
        (f"host=db password={SECRET} port=5432", f"host=db password={MASK} port=5432"),
        (f"host=db password='{SECRET}'", f"host=db password='{MASK}'"),
        (f"DRIVER={{x}};UID=u;PWD={{{SECRET}}};", f"DRIVER={{x}};UID=u;PWD={{{MASK}}};"),
        (f"{{'user': 'u', 'passwd': '{SECRET}'}}", f"{{'user': 'u', 'passwd': '{MASK}'}}"),
        (f'"PASSWORD": "{SECRET}"', f'"PASSWORD": "{MASK}"'),
        (f"postgresql://u:{SECRET}@db:5432/x", f"postgresql://u:{MASK}@db:5432/x"),
        # A distinctive password echoed anywhere (a server quoting a name).
        (f'database "x_{SECRET}" does not exist', f'database "x_{MASK}" does not exist'),
    ],
)
def test_a_real_password_is_masked(text, expected):
    assert mask_password(text, SECRET) == expected


def test_a_password_with_special_characters_is_masked_in_each_spelling():
    password = "p@zz w}rd'1"
    for text in (
        "mysql://u:p%40zz%20w%7Drd%271@h/db",
        "UID=u;PWD={p@zz w}}rd'1};",
        "password='p@zz w}rd\\'1'",
    ):
        masked = mask_password(text, password)
        assert "zz" not in masked and MASK in masked, masked


@pytest.mark.parametrize("password", ["a", "s", "root", "postgres", "password", "YES", "12345678"])
def test_a_short_or_common_password_leaves_other_text_alone(password):
    text = (
        "DATABASES['mysql_1']: cannot open a connection to mysql root@localhost/database: "
        "(1045, \"Access denied for user 'root'@'localhost' (using password: YES)\") "
        'FATAL: database "postgres" does not exist; role "a" ; 12345678'
    )
    # "YES" is the password here: "password: YES" is a password position.
    expected = text.replace("password: YES", f"password: {MASK}") if password == "YES" else text
    assert mask_password(text, password) == expected


def test_a_short_password_in_a_password_position_is_masked():
    assert mask_password("host=h password=a dbname=database", "a") == f"host=h password={MASK} dbname=database"
    assert mask_password("mysql://root:a@localhost/a", "a") == f"mysql://root:{MASK}@localhost/a"
    assert mask_password("password=abc", "a") == "password=abc"  # another value, not this password


def test_nothing_to_mask():
    assert mask_password("text", "") == "text"
    assert mask_password("text", None) == "text"
    assert mask_password("", SECRET) == ""


@pytest.mark.parametrize(
    "text,expected",
    [
        ("jdbc:postgresql://db/app?user=app&password=hunter2&ssl=1",
         f"jdbc:postgresql://db/app?user=app&password={MASK}&ssl=1"),
        ("jdbc:mysql://app:hunter2@db:3306/x", f"jdbc:mysql://app:{MASK}@db:3306/x"),
        ("DRIVER={x};UID=a;PWD={p;w};SERVER=s", f"DRIVER={{x}};UID=a;PWD={{{MASK}}};SERVER=s"),
        ("{'password': 'x y', 'user': 'u'}", f"{{'password': '{MASK}', 'user': 'u'}}"),
        ("oracle+oracledb app@scott/tiger@dbhost:1521/orcl", f"oracle+oracledb app@scott/{MASK}@dbhost:1521/orcl"),
        ("jdbc:oracle:thin:scott/tiger@//host:1521/svc", f"jdbc:oracle:thin:scott/{MASK}@//host:1521/svc"),
        # Nothing in a password position: unchanged.
        ("postgresql+psycopg app@db:5432/app", "postgresql+psycopg app@db:5432/app"),
        ("oracle app@(DESCRIPTION=(ADDRESS=(HOST=h)(PORT=1)))", "oracle app@(DESCRIPTION=(ADDRESS=(HOST=h)(PORT=1)))"),
        ("oracle app@dbhost:1521/orclpdb", "oracle app@dbhost:1521/orclpdb"),
    ],
)
def test_every_password_position_is_masked_without_knowing_the_password(text, expected):
    assert mask_credentials(text) == expected
