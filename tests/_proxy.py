"""A TCP forwarder in front of a test server that can cut the network on demand.

``pause()`` turns it into a black hole: new connections sit in the listen
backlog unanswered (the client's connect() completes at the TCP level, then
nothing ever comes back), and established connections forward nothing in
either direction. Bytes sent meanwhile wait in the kernel buffers and are
delivered on ``resume()``, as TCP retransmission would after a real outage.
``cut()`` closes every forwarded connection with a reset instead.

    proxy = Proxy("127.0.0.1", 5432)        # listens on 127.0.0.1:proxy.port
    proxy.pause(); ...; proxy.resume(); proxy.close()

Only loopback addresses: it forwards to the test server it is given.
"""

from __future__ import annotations

import select
import socket
import struct
import threading


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(512)
        self.host, self.port = self._listener.getsockname()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self.accepted = 0
        self._threads = [threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)]
        self._threads[0].start()

    # -- control ---------------------------------------------------------------
    def pause(self) -> None:
        """Black hole: accept nothing, forward nothing, close nothing."""
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    @property
    def paused(self) -> bool:
        return not self._forwarding.is_set()

    def cut(self) -> None:
        """Reset every forwarded connection (both sides see the connection drop)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closed.set()
        self._forwarding.set()
        self.cut()
        try:
            self._listener.close()
        except OSError:
            pass
        for t in self._threads:
            t.join(5)

    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # -- work ----------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            if not self._forwarding.wait(0.1):
                continue  # paused: leave new connections in the backlog
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready or not self._forwarding.is_set():
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.append((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(src, dst), name="proxy-pump", daemon=True)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                if not self._forwarding.wait(0.1):
                    continue  # paused: hold the bytes in the kernel buffer
                ready, _, _ = select.select([src], [], [], 0.1)
                if not ready or not self._forwarding.is_set():
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._pairs = [p for p in self._pairs if src not in p]
