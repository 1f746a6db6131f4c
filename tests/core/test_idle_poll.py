"""The idle poll of a parked connection (pool_core.pool._poller/_poll_now), on real sockets.

On Linux it calls libc's poll() through ctypes.PyDLL, which keeps the GIL: select.poll()
released it, and getting it back cost a thread switch per checkout under several threads
(benchmark: 4 threads, 0.63 x the floor with it, 0.8 x without; docs/performance.md).
"""

from __future__ import annotations

import socket
import sys

import pytest

from pool_core import pool


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_linux_uses_libc_poll():
    if not sys.platform.startswith("linux"):
        pytest.skip("libc poll() through ctypes is checked on Linux")
    assert pool._c_poll is not None
    a, b = socket.socketpair()
    try:
        assert type(pool._poller(a.fileno())) is tuple
    finally:
        a.close()
        b.close()


def test_idle_socket_has_nothing_pending(pair):
    a, _ = pair
    poller = pool._poller(a.fileno())
    assert pool._poll_now(poller) is False
    assert pool._poll_now(poller) is False  # kept and reused


def test_data_from_the_server_is_seen(pair):
    a, b = pair
    poller = pool._poller(a.fileno())
    b.send(b"E")  # e.g. PostgreSQL's FATAL before closing
    assert pool._poll_now(poller) is True


def test_hang_up_is_seen(pair):
    a, b = pair
    poller = pool._poller(a.fileno())
    b.close()
    assert pool._poll_now(poller) is True


def test_select_poll_fallback_sees_the_same(pair, monkeypatch):
    a, b = pair
    monkeypatch.setattr(pool, "_libc", None)
    poller = pool._poller(a.fileno())
    assert type(poller) is not tuple
    assert pool._poll_now(poller) is False
    b.send(b"x")
    assert pool._poll_now(poller) is True
