"""Database servers for the test suite: env URL, else the default local port, else a throwaway.

Never skips a vendor whose server can be started from the binaries on PATH.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse


@dataclass
class Server:
    vendor: str
    host: str
    port: int
    user: str
    password: str = ""
    origin: str = "local"
    stop: list = field(default_factory=list)
    #: Throwaway servers only: stop fast (open sessions are terminated) and
    #: start again on the same port and data; returns once it accepts connections.
    restart: Callable[[], None] | None = None
    #: Throwaway servers only: stop fast and keep the data (halt), start
    #: again on the same port (resume, returns once it accepts connections).
    halt: Callable[[], None] | None = None
    resume: Callable[[], None] | None = None

    def __repr__(self) -> str:  # never show the password
        return f"<Server {self.vendor} {self.user}@{self.host}:{self.port} ({self.origin})>"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _from_url(vendor: str, url: str) -> Server:
    u = urlparse(url)
    default_port = 5432 if vendor == "postgresql" else 3306
    return Server(vendor, u.hostname or "127.0.0.1", u.port or default_port,
                  unquote(u.username or ("postgres" if vendor == "postgresql" else "root")),
                  unquote(u.password or ""), origin="env")


def _wait_port(host: str, port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server on {host}:{port} did not start within {seconds} s")


def start_private_postgres(extra_conf: str = "") -> Server:
    """initdb + pg_ctl from the newest Debian PostgreSQL (or PATH) under /tmp."""
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    bindir = bindirs[-1] if bindirs else os.path.dirname(shutil.which("pg_ctl") or "")
    if not bindir or not os.path.exists(os.path.join(bindir, "initdb")):
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")
    base = tempfile.mkdtemp(prefix="pool-test-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), _free_port()
    subprocess.run(as_user + [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                   check=True, capture_output=True)
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                "max_connections = 300\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                + extra_conf)
    ctl = as_user + [f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(base, "log"), "-w"]
    subprocess.run(ctl + ["start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(ctl + ["-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    def restart() -> None:
        subprocess.run(ctl + ["-m", "fast", "restart"], check=True, capture_output=True)
        _wait_port("127.0.0.1", port)

    def halt() -> None:
        subprocess.run(ctl + ["-m", "fast", "stop"], check=True, capture_output=True)

    def resume() -> None:
        subprocess.run(ctl + ["start"], check=True, capture_output=True)
        _wait_port("127.0.0.1", port)

    server = Server("postgresql", "127.0.0.1", port, "postgres", origin="throwaway", stop=[stop],
                    restart=restart, halt=halt, resume=resume)
    atexit.register(stop)
    return server


def start_private_mariadb() -> Server:
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not os.path.exists(mariadbd):
        raise RuntimeError("no MariaDB server binary (mariadbd) found")
    base = tempfile.mkdtemp(prefix="pool-test-mariadb-")
    data, port, sock = os.path.join(base, "data"), _free_port(), os.path.join(base, "mysqld.sock")
    subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True)
    cmd = [mariadbd, "--no-defaults", "--user=root", f"--datadir={data}", f"--port={port}",
           "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={base}/mysqld.pid",
           f"--log-error={base}/error.log", "--skip-name-resolve", "--max-connections=400"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    _wait_port("127.0.0.1", port)

    def shutdown() -> None:
        proc = procs[-1]
        proc.terminate()  # SIGTERM: MariaDB's normal shutdown, sessions are killed
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)

    def stop() -> None:
        shutdown()
        shutil.rmtree(base, ignore_errors=True)

    def resume() -> None:
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_port("127.0.0.1", port)

    def restart() -> None:
        shutdown()
        resume()

    atexit.register(stop)
    return Server("mysql", "127.0.0.1", port, "root", origin="throwaway", stop=[stop], restart=restart,
                  halt=shutdown, resume=resume)


def postgres() -> Server:
    url = os.environ.get("POOL_TEST_PG_URL")
    if url:
        return _from_url("postgresql", url)
    if _port_open("127.0.0.1", 5432):
        return Server("postgresql", "127.0.0.1", 5432, os.environ.get("POOL_TEST_PG_USER", "postgres"))
    return start_private_postgres()


def mariadb() -> Server:
    url = os.environ.get("POOL_TEST_MYSQL_URL")
    if url:
        return _from_url("mysql", url)
    if _port_open("127.0.0.1", 3306):
        return Server("mysql", "127.0.0.1", 3306, "root")
    return start_private_mariadb()
