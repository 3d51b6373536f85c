"""A local HTTP file server for download tests (127.0.0.1 only), with bad habits on demand.

Per file: honour or ignore Range, drop the connection after N bytes (the first k
times), change the ETag, or serve other bytes than the registry expects.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    data: bytes
    etag: str = '"v1"'
    ignore_range: bool = False
    drop_after: int | None = None  # bytes sent before the connection is cut
    drops_left: int = 0


def send_served(handler: BaseHTTPRequestHandler, served: Served) -> None:
    """Answer a GET with the file, honouring Range / If-Range, and its bad habits."""
    data, start = served.data, 0
    rng = handler.headers.get("Range")
    if_range = handler.headers.get("If-Range")
    if rng and not served.ignore_range and (if_range in (None, served.etag)):
        start = int(rng.removeprefix("bytes=").split("-")[0])
        if start >= len(data):
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{len(data)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(206)
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    else:
        handler.send_response(200)
    body = data[start:]
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("ETag", served.etag)
    handler.send_header("Accept-Ranges", "bytes")
    handler.end_headers()
    if served.drop_after is not None and served.drops_left > 0:
        served.drops_left -= 1
        cut = max(0, served.drop_after - start)
        handler.wfile.write(body[:cut])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return
    handler.wfile.write(body)


@dataclass
class FileServer:
    files: dict[str, Served] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes, **behaviour) -> str:
        self.files[name] = Served(data, **behaviour)
        return self.url(name)

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                owner.requests.append((name, dict(self.headers.items())))
                served = owner.files.get(name)
                if served is None:
                    self.send_error(404)
                    return
                send_served(self, served)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def ranges(self, name: str) -> list[str | None]:
        return [h.get("Range") for n, h in self.requests if n == name]
