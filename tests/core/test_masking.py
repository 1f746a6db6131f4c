"""The password is hidden where it stands as the password, and nowhere else."""

from __future__ import annotations

import pytest

from pool_core._masking import MASK, mask_password

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
