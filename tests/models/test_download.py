"""Downloads against a real local HTTP server: resume, retries, checksums, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from bridge.errors import Cancelled
from bridge.models.download import (
    ChecksumMismatch,
    DownloadError,
    DownloadRefused,
    download,
    partial_size,
)
from bridge.ops.base import CancelToken
from tests.models.file_server import FileServer

DATA = os.urandom(3_000_000)  # three 1 MiB chunks
SHA = hashlib.sha256(DATA).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_verifies_and_reports_progress(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA)
    seen: list[tuple[int, int | None]] = []
    got = download(url, tmp_path / "model.pth", sha256=SHA, expected_size=len(DATA),
                   progress=lambda r, t: seen.append((r, t)))
    assert (tmp_path / "model.pth").read_bytes() == DATA
    assert got.sha256 == SHA and got.size == len(DATA) and not got.resumed
    assert leftovers(tmp_path) == ["model.pth"]
    assert seen[0] == (0, len(DATA)) and seen[-1] == (len(DATA), len(DATA))
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)
    assert file_server.requests[0][1]["User-Agent"].startswith("retouch-bridge/")


def test_resume_after_a_dropped_connection(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA, drop_after=1_200_000, drops_left=1)
    dest = tmp_path / "model.pth"
    with pytest.raises(DownloadError, match="pull again to resume"):
        download(url, dest, sha256=SHA, retries=0)
    assert not dest.exists()
    assert partial_size(dest) == 1_200_000
    got = download(url, dest, sha256=SHA, retries=0)
    assert got.resumed and dest.read_bytes() == DATA
    # The second request asked only for the rest, conditional on the same file version.
    assert file_server.ranges("model.pth") == [None, "bytes=1200000-"]
    assert file_server.requests[1][1]["If-Range"] == '"v1"'
    assert leftovers(tmp_path) == ["model.pth"]


def test_retries_resume_within_one_call(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA, drop_after=1_000_000, drops_left=2)
    got = download(url, tmp_path / "model.pth", sha256=SHA, retries=3, backoff_s=0)
    assert got.sha256 == SHA
    # Dropped twice at the same offset; the retries asked for the missing bytes only.
    assert file_server.ranges("model.pth") == [None, "bytes=1000000-", "bytes=1000000-"]


def test_server_that_ignores_range_starts_over(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA, ignore_range=True, drop_after=700_000,
                          drops_left=1)
    dest = tmp_path / "model.pth"
    with pytest.raises(DownloadError):
        download(url, dest, sha256=SHA, retries=0)
    got = download(url, dest, sha256=SHA, retries=0)
    assert file_server.ranges("model.pth")[1] == "bytes=700000-"
    assert not got.resumed  # a 200 answer replaced the part instead of appending to it
    assert dest.read_bytes() == DATA


def test_checksum_mismatch_leaves_nothing(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA[:-1] + b"x")
    with pytest.raises(ChecksumMismatch, match=r"checksum mismatch.*deleted") as info:
        download(url, tmp_path / "model.pth", sha256=SHA)
    assert info.value.details["expected"] == SHA
    assert leftovers(tmp_path) == []


def test_stale_partial_from_another_file_is_refetched_whole(
        file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA)
    dest = tmp_path / "model.pth"
    # A part left by an older release with the same validator: resuming gives garbage.
    (tmp_path / "model.pth.part").write_bytes(b"\0" * 500_000)
    (tmp_path / "model.pth.part.json").write_text(json.dumps({"url": url, "etag": '"v1"'}))
    got = download(url, dest, sha256=SHA)
    assert dest.read_bytes() == DATA and not got.resumed
    assert file_server.ranges("model.pth") == ["bytes=500000-", None]


def test_changed_file_upstream_is_not_spliced(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA, etag='"v2"')
    (tmp_path / "model.pth.part").write_bytes(DATA[:100_000])
    (tmp_path / "model.pth.part.json").write_text(json.dumps({"url": url, "etag": '"v1"'}))
    download(url, tmp_path / "model.pth", sha256=SHA)
    # If-Range did not match: the server sent the whole file once.
    assert len(file_server.requests) == 1
    assert (tmp_path / "model.pth").read_bytes() == DATA


def test_md5_only_checksums_are_checked(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pt", DATA)
    good = hashlib.md5(DATA).hexdigest()
    assert download(url, tmp_path / "a.pt", md5=good).md5 == good
    with pytest.raises(ChecksumMismatch):
        download(url, tmp_path / "b.pt", md5="0" * 32)
    assert leftovers(tmp_path) == ["a.pt"]


def test_cancel_keeps_the_part_for_later(file_server: FileServer, tmp_path: Path) -> None:
    url = file_server.add("model.pth", DATA)
    token = CancelToken()

    def progress(received: int, total: int | None) -> None:
        if received >= 1 << 20:
            token.cancel()

    with pytest.raises(Cancelled):
        download(url, tmp_path / "model.pth", sha256=SHA, progress=progress, cancel=token)
    assert partial_size(tmp_path / "model.pth") == 1 << 20
    download(url, tmp_path / "model.pth", sha256=SHA)
    assert file_server.ranges("model.pth")[-1] == f"bytes={1 << 20}-"


def test_refusals(file_server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadRefused, match="only https"):
        download("http://example.com/model.pth", tmp_path / "m.pth")
    with pytest.raises(DownloadRefused, match="only https"):
        download("ftp://127.0.0.1/model.pth", tmp_path / "m.pth")
    url = file_server.add("model.pth", DATA)
    with pytest.raises(DownloadRefused, match="registry expects"):
        download(url, tmp_path / "m.pth", expected_size=123)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(file_server.url("nothing.pth"), tmp_path / "m.pth", retries=5, backoff_s=0)
    assert [n for n, _ in file_server.requests].count("nothing.pth") == 1  # 4xx: no retry
    assert leftovers(tmp_path) == []
