"""Clients that go away half-way: during an upload, a download, or a synchronous operation.

The server must keep serving, leave no temporary files, hold no file descriptors or
jobs for the departed client, and stop work nobody will collect.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tests.hardening.helpers import leftovers, raw_layout
from tests.hardening.procinfo import HAS_PROC
from tests.hardening.procinfo import open_files as all_open_files
from tests.support.server import Bridge, multipart


def open_connection(b: Bridge) -> socket.socket:
    return socket.create_connection(("127.0.0.1", b.port), timeout=10)


def head(b: Bridge, method: str, path: str, content_type: str, length: int) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{b.port}\r\n"
            f"Authorization: Bearer {b.token}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def abandon_upload(b: Bridge, path: str, body: bytes, ctype: str, keep: float) -> None:
    """Send the headers and the first `keep` share of the body, then vanish."""
    with open_connection(b) as s:
        s.sendall(head(b, "POST", path, ctype, len(body)))
        s.sendall(body[: int(len(body) * keep)])
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # SO_LINGER 0: close sends a reset, as a crashed client or a dropped Wi-Fi does


def settle(b: Bridge, condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not settle"
        time.sleep(0.05)


def open_files(pid: int) -> list[str]:
    """The server's open files but for its job-folder lock (held while it runs)."""
    return [f for f in all_open_files(pid) if "/job-owners/" not in f]


def job_count(b: Bridge) -> int:
    return len(b.get("/v1/jobs").json()["jobs"])


def cache_files(b: Bridge) -> list[str]:
    return leftovers(b.home / "cache")


BIG = np.random.default_rng(4).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)  # 5.8 MB


def test_uploads_cut_off_half_way_leave_nothing(bridge_server: Bridge):
    b = bridge_server
    jobs_before = job_count(b)
    files_before = len(open_files(b.proc.pid))
    body, ctype = multipart([("op", "passthrough", None),
                             ("raw", json.dumps(raw_layout(BIG)), None),
                             ("image", BIG.tobytes(), "application/octet-stream")])
    psd_body, psd_ctype = multipart([("op", "passthrough", None), ("layer", "x", None),
                                     ("psd", b"8BPS" + bytes(3 << 20), "image/x-photoshop")])
    for i in range(6):
        abandon_upload(b, "/v1/jobs", body, ctype, keep=0.2 + 0.1 * i)
        abandon_upload(b, "/v1/psd/apply", psd_body, psd_ctype, keep=0.2 + 0.1 * i)
        abandon_upload(b, "/v1/jobs", BIG.tobytes(), "application/octet-stream", keep=0.5)
    assert b.alive()
    settle(b, lambda: cache_files(b) == [])  # the PSD uploads streamed to disk are gone
    assert job_count(b) == jobs_before
    # An everyday event: one line in the log each, no tracebacks.
    assert sum("client went away" in line for line in b.output) >= 18
    assert not [line for line in b.output if "Traceback" in line or "Error handling" in line]
    if HAS_PROC:
        settle(b, lambda: len(open_files(b.proc.pid)) <= files_before)
    # And it still takes a whole upload.
    r = b.submit("passthrough", BIG.tobytes(), raw=raw_layout(BIG))
    assert r.status == 202
    assert b.wait(r.json()["id"])["state"] == "done"


def test_downloads_cut_off_half_way_leave_the_result_whole(bridge_server: Bridge):
    b = bridge_server
    job = b.submit("passthrough", BIG.tobytes(), raw=raw_layout(BIG)).json()["id"]
    assert b.wait(job)["state"] == "done"
    files_before = len(open_files(b.proc.pid))
    for fmt in ("raw", "tiff", "png"):
        for _ in range(3):
            with open_connection(b) as s:
                s.sendall(f"GET /v1/jobs/{job}/result?format={fmt} HTTP/1.1\r\nHost: "
                          f"127.0.0.1:{b.port}\r\nAuthorization: Bearer {b.token}\r\n\r\n"
                          .encode())
                got = s.recv(200_000)
                assert got.startswith(b"HTTP/1.1 200")
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert b.alive()
    whole = b.get(f"/v1/jobs/{job}/result?format=raw")
    assert whole.status == 200 and whole.body == BIG.tobytes()
    if HAS_PROC:
        settle(b, lambda: len(open_files(b.proc.pid)) <= files_before)


def test_a_psd_download_cut_off_does_not_hold_the_file(bridge_server: Bridge, tmp_path: Path):
    from tests.hardening.test_fault_disk import psd_bytes

    b = bridge_server
    r = b.post_form("/v1/psd/apply", [("psd", psd_bytes(512, seed=9), "image/x-photoshop"),
                                      ("op", "passthrough", None), ("layer", "Photo", None)])
    job = b.wait(r.json()["id"])
    assert job["state"] == "done", job
    files_before = [f for f in open_files(b.proc.pid) if f.endswith(".psd")]
    for _ in range(3):
        with open_connection(b) as s:
            s.sendall(f"GET /v1/jobs/{job['id']}/result HTTP/1.1\r\nHost: 127.0.0.1:{b.port}\r\n"
                      f"Authorization: Bearer {b.token}\r\n\r\n".encode())
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    if HAS_PROC:
        settle(b, lambda: [f for f in open_files(b.proc.pid) if f.endswith(".psd")]
               == files_before)
    assert b.get(f"/v1/jobs/{job['id']}/result").body[:4] == b"8BPS"


@pytest.mark.parametrize("where", ["/v1/ops/passthrough"])
def test_a_synchronous_call_whose_client_left_stops_its_job(bridge_server: Bridge, where: str):
    b = bridge_server
    px = np.zeros((8, 8, 3), np.uint8)
    body, ctype = multipart([("params", json.dumps({"delay_s": 30}), None),
                             ("raw", json.dumps(raw_layout(px)), None),
                             ("image", px.tobytes(), "application/octet-stream")])
    known = {j["id"] for j in b.get("/v1/jobs").json()["jobs"]}
    with open_connection(b) as s:
        s.sendall(head(b, "POST", where, ctype, len(body)) + body)
        settle(b, lambda: any(j["state"] == "running" for j in b.get("/v1/jobs").json()["jobs"]
                              if j["id"] not in known))
    job = next(j for j in b.get("/v1/jobs").json()["jobs"] if j["id"] not in known)
    t0 = time.monotonic()
    final = b.wait(job["id"], timeout=20)
    assert final["state"] == "cancelled", final
    assert time.monotonic() - t0 < 5  # at its next step, not after its 30 s
    # The worker is free again.
    quick = b.submit("passthrough", px.tobytes(), raw=raw_layout(px)).json()["id"]
    assert b.wait(quick, timeout=10)["state"] == "done"
