"""A port squatter that relays: it listens on its own port and pipes every connection,
byte for byte, to a real bridge on another port, recording what clients send it.

This is the attack the port-bound identity proof stops: the bridge behind it answers the
challenge correctly for its own port, and the squatter passes that answer on unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._sent: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    def received(self) -> bytes:
        """Everything clients sent to the relay, all connections together."""
        with self._lock:
            return b"".join(self._sent)

    def requests(self) -> list[str]:
        """The request lines clients sent ('GET /v1/health?challenge=... HTTP/1.1')."""
        lines = self.received().decode("latin-1").split("\r\n")
        return [ln for ln in lines if ln.split(" ", 1)[0] in
                ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")]

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self._sent.append(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # Half-close onward so the other side sees the end, as a real proxy would.
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
