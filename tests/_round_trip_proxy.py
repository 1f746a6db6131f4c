"""A TCP proxy that counts round trips between a client and a database server."""

from __future__ import annotations

import selectors
import socket
import threading


class RoundTripProxy:
    """Forward one TCP port to the server; count client sends that follow a server reply."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.round_trips = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def reset(self) -> None:
        with self._lock:
            self.round_trips = 0

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            t = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        # One thread per connection: a synchronous driver alternates between
        # sending and waiting, so direction changes are round trips.
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, "c2s")
        sel.register(server, selectors.EVENT_READ, "s2c")
        last = "s2c"
        try:
            while not self._closing:
                for key, _ in sel.select(timeout=0.2):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    if key.data == "c2s":
                        if last != "c2s":
                            with self._lock:
                                self.round_trips += 1
                        last = "c2s"
                        server.sendall(data)
                    else:
                        last = "s2c"
                        client.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            client.close()
            server.close()

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        for t in self._threads:
            t.join(5)
