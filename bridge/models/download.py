"""Resumable, verified downloads into a folder, with the standard library only.

`download(url, dest, ...)` fetches `url` into `dest` through `dest.part`:

* resume: bytes already in `dest.part` are kept and the rest is requested with an HTTP
  `Range` header (and `If-Range` with the validator the server gave, so a file that
  changed upstream is fetched whole). A server that ignores Range (answers 200) is
  handled by starting over; a 416 means the part may already be complete.
* retries: a dropped connection is retried (`retries` times, resuming each time).
* verification: the sha256 (and md5 when given) of the complete file must match; on a
  mismatch the part is deleted and `ChecksumMismatch` raised, so nothing corrupt stays
  in the cache. A resumed file that fails is fetched once more from scratch first (the
  old part may have come from a different file).
* atomic: the verified part is fsynced and renamed onto `dest`; `dest` never exists
  half-written.
* cancellation: `cancel.cancelled` is polled between chunks; the part is kept for a
  later resume.

Only https is accepted, and plain http to the loopback interface (tests, local
mirrors); a redirect may not leave https. urllib honours the usual proxy variables.

`fetch_json(url)` GETs a small JSON document (Hub listings) under the same rules.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bridge import __version__
from bridge.errors import BridgeError, Cancelled
from bridge.net import is_loopback
from bridge.private_dirs import make_dir

ProgressFn = Callable[[int, int | None], None]
CHUNK = 1 << 20
USER_AGENT = f"retouch-bridge/{__version__} (+urllib)"


class CancelLike(Protocol):
    @property
    def cancelled(self) -> bool: ...


class DownloadError(BridgeError):
    status = 502
    code = "download_failed"


class ChecksumMismatch(DownloadError):
    code = "checksum_mismatch"


class DownloadRefused(DownloadError):
    """A failure that retrying cannot fix (bad URL, wrong size, no disk space)."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    md5: str
    size: int
    resumed: bool


def check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return
    raise DownloadRefused(f"refusing to download from {url!r}: only https is allowed", url=url)


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_SafeRedirects())


def git_blob_oid(path: Path) -> str:
    """The git object id of a file's bytes (what the Hub lists for files not in LFS)."""
    sha = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


MAX_JSON_BYTES = 64 << 20


def fetch_json(url: str, *, timeout: float = 30.0, retries: int = 2,
               backoff_s: float = 1.0) -> tuple[Any, Any]:
    """GET a JSON document; returns (data, response headers). 4xx answers are final."""
    check_url(url)
    failures = 0
    while True:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                                       "Accept": "application/json"})
        try:
            with _opener.open(request, timeout=timeout) as resp:
                body = resp.read(MAX_JSON_BYTES + 1)
                headers = resp.headers
        except urllib.error.HTTPError as e:
            if e.code < 500 and e.code not in (408, 429):
                raise DownloadError(f"{url} answered HTTP {e.code} {e.reason}", url=url,
                                    http_status=e.code) from e
            error: Exception = e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            error = e
        else:
            if len(body) > MAX_JSON_BYTES:
                raise DownloadRefused(f"{url} sent more than {MAX_JSON_BYTES} bytes of JSON",
                                      url=url)
            try:
                return json.loads(body), headers
            except ValueError as e:
                raise DownloadRefused(f"{url} did not answer JSON: {e}", url=url) from e
        failures += 1
        if failures > retries:
            raise DownloadError(f"could not reach {url} after {failures} attempts: {error}",
                                url=url) from error
        time.sleep(backoff_s * failures)


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_meta(part: Path, url: str) -> dict[str, Any]:
    try:
        meta = json.loads(_meta_path(part).read_text())
    except (OSError, ValueError):
        return {}
    return meta if meta.get("url") == url else {}


def _write_meta(part: Path, meta: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        _meta_path(part).write_text(json.dumps(meta))


def discard_partial(dest: Path) -> None:
    part = dest.with_name(dest.name + ".part")
    for p in (part, _meta_path(part)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def partial_size(dest: Path) -> int:
    try:
        return dest.with_name(dest.name + ".part").stat().st_size
    except OSError:
        return 0


def _hash_existing(path: Path) -> tuple[Any, Any, int]:
    sha, md5, n = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            n += len(chunk)
    return sha, md5, n


def _total_from(resp: Any, start: int) -> int | None:
    rng = resp.headers.get("Content-Range")
    if rng and "/" in rng:
        total = rng.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    length = resp.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + start
    return None


def _attempt(url: str, part: Path, progress: ProgressFn | None, cancel: CancelLike | None,
             timeout: float, expected_size: int | None) -> bool:
    """One request that leaves part complete (or raises). True if it resumed existing bytes."""
    have = part.stat().st_size if part.exists() else 0
    meta = _read_meta(part, url) if have else {}
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        validator = meta.get("etag") or meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        resp = _opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # Nothing left to send: the part is complete (or longer than the file; the
            # checksum decides).
            return True
        raise
    with resp:
        if resp.status == 206:
            rng = resp.headers.get("Content-Range", "")
            if not rng.startswith(f"bytes {have}-"):
                raise DownloadError(f"server sent range {rng!r}, asked for bytes {have}-",
                                    url=url)
            mode, start = "ab", have
        else:
            # 200: the server ignored Range (or If-Range found the file changed).
            mode, start = "wb", 0
        total = _total_from(resp, start)
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadRefused(
                f"server reports {total} bytes, the registry expects {expected_size}", url=url)
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - start > free:
                raise DownloadRefused(f"not enough disk space: need {total - start} bytes, "
                                    f"{free} free in {part.parent}", url=url)
        _write_meta(part, {"url": url, "etag": resp.headers.get("ETag"),
                           "last_modified": resp.headers.get("Last-Modified")})
        received = start
        with part.open(mode) as f:
            if progress is not None:
                progress(received, total)
            while True:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("download cancelled; run the pull again to resume")
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received, total)
            f.flush()
            os.fsync(f.fileno())
        if total is not None and received < total:
            raise DownloadError(f"connection closed after {received} of {total} bytes", url=url)
    return start > 0


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    git_oid: str | None = None,
    expected_size: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelLike | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff_s: float = 1.0,
) -> Downloaded:
    """Fetch url into dest (atomically, verified); see the module docstring."""
    check_url(url)
    make_dir(dest.parent)
    part = dest.with_name(dest.name + ".part")
    resumed = False
    fresh_retry_left = True
    failures = 0
    while True:
        try:
            # Whether the final file joins bytes from several responses.
            resumed = _attempt(url, part, progress, cancel, timeout, expected_size)
        except DownloadRefused:
            raise
        except (urllib.error.URLError, OSError, http.client.HTTPException, DownloadError) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code < 500 and e.code != 408:
                raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}",
                                    url=url) from e
            failures += 1
            if failures > retries:
                reason = e.message if isinstance(e, DownloadError) else str(e)
                raise DownloadError(
                    f"download of {url} failed after {failures} attempts: {reason}; "
                    "the partial file is kept, pull again to resume", url=url) from e
            time.sleep(backoff_s * failures)
            continue
        sha, md, size = _hash_existing(part)
        got_sha, got_md5 = sha.hexdigest(), md.hexdigest()
        got_oid = git_blob_oid(part) if git_oid is not None else None
        bad = (sha256 is not None and got_sha != sha256) or (md5 is not None and got_md5 != md5) \
            or (git_oid is not None and got_oid != git_oid)
        if bad or (expected_size is not None and size != expected_size):
            discard_partial(dest)
            if resumed and fresh_retry_left:
                # The old part may belong to another version of the file: once more, whole.
                fresh_retry_left, resumed = False, False
                continue
            want, got = ((sha256, got_sha) if sha256 else (md5, got_md5) if md5
                         else (git_oid, got_oid) if git_oid else (f"{expected_size} bytes", size))
            raise ChecksumMismatch(
                f"checksum mismatch for {url}: expected {want}, got "
                f"{got} ({size} bytes); the download was deleted",
                url=url, expected=want, actual=got)
        os.replace(part, dest)
        with contextlib.suppress(FileNotFoundError):
            _meta_path(part).unlink()
        return Downloaded(dest, got_sha, got_md5, size, resumed)
