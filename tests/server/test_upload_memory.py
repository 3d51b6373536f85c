"""Uploads held in memory are bounded across the whole server (`--max-inflight-mb`).

The real server with an 8 MB in-flight limit and a 16 MB body limit. A client that
sends most of a body and then stalls holds its bytes; uploads that would go past the
limit wait briefly, then get 503 `busy` with Retry-After, while the server keeps
answering. Once the stalled client goes, uploads are accepted again, and what an
upload held is given back when it ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.server import Bridge, Reply, running_bridge

MB = 1 << 20


@pytest.fixture(scope="module")
def bridge(tmp_path_factory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("inflight-home"), "--max-body-mb", "16",
                        "--max-inflight-mb", "8") as b:
        yield b


def raw_head(b: Bridge, length: int, declared: int | None = None) -> bytes:
    """A raw-pixels job of `length` bytes (1024 x rows x 4 channels, 8-bit)."""
    rows = length // 4096
    return (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{b.port}\r\n"
            f"Authorization: Bearer {b.token}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {declared or length}\r\nX-Op: passthrough\r\nX-Width: 1024\r\n"
            f"X-Height: {rows}\r\nX-Channels: 4\r\nX-Depth: 8\r\nConnection: close\r\n\r\n"
            ).encode()


@contextlib.contextmanager
def stalled_upload(b: Bridge, sent: int, declared: int) -> Iterator[socket.socket]:
    """Sends `sent` bytes of a `declared`-byte body, then nothing until closed."""
    sock = socket.create_connection(("127.0.0.1", b.port))
    try:
        sock.sendall(raw_head(b, declared) + bytes(sent))
        yield sock
    finally:
        sock.close()


def upload(b: Bridge, length: int) -> Reply:
    """A whole raw upload; the body is sent from a thread, so an early answer is read
    even while the rest of the body is still on its way."""
    sock = socket.create_connection(("127.0.0.1", b.port))
    sock.settimeout(30)

    def send() -> None:
        with contextlib.suppress(OSError):  # the server may answer and close first
            sock.sendall(raw_head(b, length) + bytes(length))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    data = b""
    try:
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        while len(body) < int(headers.get("Content-Length", 0)) and (chunk := sock.recv(65536)):
            body += chunk
    finally:
        sock.close()
        sender.join(5)
    return Reply(int(lines[0].split()[1]), headers, body)


def upload_into(replies: list[Reply], b: Bridge, length: int) -> None:
    replies.append(upload(b, length))


def test_uploads_past_the_limit_get_503_busy_and_the_server_stays_healthy(bridge: Bridge):
    with stalled_upload(bridge, sent=6 * MB, declared=7 * MB):
        # Until the server has read the stalled client's 6 MB, a 3 MB upload still fits.
        deadline = time.monotonic() + 15
        busy: list[Reply] = []
        while not busy and time.monotonic() < deadline:
            replies: list[Reply] = []
            threads = [threading.Thread(target=upload_into, args=(replies, bridge, 3 * MB))
                       for _ in range(3)]
            for t in threads:
                t.start()
            time.sleep(0.5)  # they are waiting for memory now: the server still answers
            health = bridge.get("/v1/health", token=False, timeout=5)
            assert health.status == 200
            for t in threads:
                t.join(30)
            busy = [r for r in replies if r.status == 503]
            assert all(r.status in (202, 503) for r in replies), [r.body for r in replies]
        assert busy, "no upload was refused while 6 of 8 MB were held"
        for r in busy:
            assert r.error_code == "busy" and r.headers.get("Retry-After") == "2", r
            assert "--max-inflight-mb" in r.json()["error"]["message"]
    # The stalled client is gone: its bytes are given back, and 6 MB uploads, one after
    # the other, each fit (each gives back what it held when it ends).
    deadline = time.monotonic() + 15
    first = upload(bridge, 6 * MB)
    while first.status == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        first = upload(bridge, 6 * MB)
    assert first.status == 202, first.body
    second = upload(bridge, 6 * MB)
    assert second.status == 202, second.body
    assert bridge.wait(second.json()["id"])["state"] == "done"
    assert bridge.alive()


def test_one_upload_alone_may_be_larger_than_the_in_flight_limit(bridge: Bridge):
    r = upload(bridge, 12 * MB)  # under the 16 MB body limit, over the 8 MB in-flight one
    assert r.status == 202, r.body
    assert bridge.wait(r.json()["id"])["state"] == "done"


def test_the_body_limit_per_request_stays(bridge: Bridge):
    r = upload(bridge, 20 * MB)
    assert r.status == 413 and r.error_code == "too_large"


def test_a_settings_body_is_read_up_to_a_megabyte_only(bridge: Bridge):
    r = bridge.request("PUT", "/v1/settings", b'{"port": 7000, "x": "' + b"a" * (2 * MB) + b'"}',
                       headers={"Content-Type": "application/json"})
    assert r.status == 413 and r.error_code == "too_large", r.body
    assert bridge.alive()
