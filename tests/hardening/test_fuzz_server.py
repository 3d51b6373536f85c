"""Fuzzing the real server over HTTP, for a bounded number of requests: multipart bodies
(malformed boundaries, huge part headers, duplicated and unknown parts, broken JSON),
raw bodies with lying X- headers, query strings of every GET that takes one, and JSON
bodies of PUT /v1/settings.

The contract: no 5xx, a JSON error body on every refusal the application makes, and the
server alive after each request; a job the server accepted ends in a final state whose
error, if any, is not internal_error. (A request the HTTP parser itself rejects, before
the application sees it, is answered by aiohttp in plain text; that is allowed, as a 4xx.)
Requests that break the contract are kept in tests/fuzz_corpus/http/ (the raw bytes
sent) and replayed by test_fuzz_corpus.py.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.fuzzing import fuzz_settings, keep
from tests.support.images import png_bytes
from tests.support.server import Bridge, running_bridge

PNG = png_bytes(np.arange(48 * 3, dtype=np.uint8).reshape(4, 12, 3))
RAW = json.dumps({"width": 4, "height": 4, "channels": 3, "depth": 8})


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    with running_bridge(tmp_path_factory.mktemp("fuzz-home"), env={"RB_MAX_PIXELS": "4000000",
                                                                   "RB_MAX_BODY_MB": "4"}) as b:
        yield b


def raw_request(b: Bridge, method: str, target: str, headers: dict[str, str],
                body: bytes = b"", token: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{b.port}", "Connection: close"]
    if token:
        lines.append(f"Authorization: Bearer {b.token}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def as_template(b: Bridge, request: bytes) -> bytes:
    """The request with this server's address and token as placeholders (corpus files)."""
    head, sep, body = request.partition(b"\r\n\r\n")
    head = head.replace(f"127.0.0.1:{b.port}".encode(), b"@HOST@").replace(
        b.token.encode(), b"@TOKEN@")
    return head + sep + body


def from_template(b: Bridge, template: bytes) -> bytes:
    head, sep, body = template.partition(b"\r\n\r\n")
    head = head.replace(b"@HOST@", f"127.0.0.1:{b.port}".encode()).replace(
        b"@TOKEN@", b.token.encode())
    return head + sep + body


def exchange(b: Bridge, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; parse the status line, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", b.port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def check_answer(b: Bridge, request: bytes) -> tuple[int, bytes]:
    status, headers, body = exchange(b, request)
    problem = None
    if status >= 500:
        problem = f"{status}: {body[:300]!r}"
    elif status >= 400 and "json" not in headers.get("content-type", ""):
        if status not in (400, 413, 431):  # what aiohttp's own HTTP parser answers
            problem = f"{status} without JSON: {body[:200]!r}"
    elif status >= 400:
        err = json.loads(body)["error"]
        if not err.get("message") or err.get("code") == "internal_error":
            problem = f"{status}: {err}"
    if problem is None and not b.alive():
        problem = "the server died"
    if problem is None and status == 202:
        job = json.loads(body)["id"]
        final = b.wait(job, timeout=60)
        if final["state"] == "failed" and final["error"]["code"] == "internal_error":
            problem = f"job failed: {final['error']}"
    if problem is not None:
        where = keep("http", as_template(b, request), ".http")
        raise AssertionError(f"{problem} (request kept as {where.name})")
    return status, body


# -- multipart bodies -----------------------------------------------------------------------
boundaries = st.sampled_from(["x", "rb-0123456789abcdef", "a" * 70, "with space", "quote\"d",
                              "", "-", "é", "b" * 200]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
part_names = st.sampled_from(["op", "params", "image", "mask", "raw", "mask_raw", "icc",
                              "priority", "psd", "layer", "composite", "recipe", "reference",
                              "mask_from_layer", "", "op\"x", "x" * 300]) | st.text(max_size=8)
part_bodies = st.sampled_from([b"passthrough", b"upscale", PNG, RAW.encode(), b"{}", b"{bad",
                               b'{"delay_s": 0.01}', b'{"scale": 1e999}', b"\xff\xfe\x00",
                               b"8BPS" + bytes(30), bytes(48), b"interactive", b"batch",
                               b'name="x"\n[[steps]]\nop="passthrough"\n']) | st.binary(max_size=64)


@st.composite
def multipart_bodies(draw) -> tuple[str, bytes]:
    boundary = draw(boundaries)
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        name = draw(part_names)
        disposition = draw(st.sampled_from([
            f'form-data; name="{name}"', f'form-data; name="{name}"; filename="f.bin"',
            f"form-data; name={name}", "form-data", "attachment", ""]))
        head = f"Content-Disposition: {disposition}".encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            head += eol + b"Content-Type: " + draw(st.sampled_from(
                [b"application/octet-stream", b"text/plain; charset=latin-1",
                 b"multipart/mixed; boundary=y", b"image/png"]))
        if draw(st.integers(0, 8)) == 0:
            head += eol + b"X-Padding: " + b"p" * draw(st.sampled_from([100, 9000, 70000]))
        out += b"--" + boundary.encode("utf-8", "surrogatepass") + eol + head + eol + eol
        out += draw(part_bodies) + eol
    ending = draw(st.sampled_from(["close", "none", "wrong", "garbage"]))
    if ending == "close":
        out += b"--" + boundary.encode("utf-8", "surrogatepass") + b"--" + eol
    elif ending == "wrong":
        out += b"--other--" + eol
    elif ending == "garbage":
        out += draw(st.binary(max_size=40))
    ctype = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}",
                                  f'multipart/form-data; boundary="{boundary}"',
                                  "multipart/form-data", "multipart/form-data; boundary=",
                                  f"multipart/mixed; boundary={boundary}"]))
    return ctype, out


@fuzz_settings(70)
@given(st.sampled_from(["/v1/jobs", "/v1/psd/apply", "/v1/recipes/run", "/v1/ops/passthrough"]),
       multipart_bodies())
def test_multipart_bodies(bridge: Bridge, path: str, body: tuple[str, bytes]) -> None:
    ctype, data = body
    try:
        request = raw_request(bridge, "POST", path, {"Content-Type": ctype}, data)
    except UnicodeEncodeError:
        return
    check_answer(bridge, request)


# -- raw bodies with lying headers ------------------------------------------------------------
header_values = st.sampled_from(["0", "1", "4", "-1", "3.5", "", "1e3", "99999999999999999999",
                                 "  4 ", "0x10", "８"]) | st.integers(-10, 70).map(str)


@fuzz_settings(50)
@given(st.fixed_dictionaries({}, optional={
    "X-Width": header_values, "X-Height": header_values, "X-Channels": header_values,
    "X-Depth": header_values, "X-Op": st.sampled_from(["passthrough", "upscale", "nope", ""]),
    "X-Params": st.sampled_from(["", "{}", "{bad", '{"scale": 2, "model": "lanczos"}', "[]",
                                 '{"delay_s": "x"}']),
    "X-Priority": st.sampled_from(["batch", "now", ""])}), st.integers(0, 200))
def test_raw_bodies(bridge: Bridge, headers: dict[str, str], length: int) -> None:
    request = raw_request(bridge, "POST", "/v1/jobs",
                          {"Content-Type": "application/octet-stream", **headers}, bytes(length))
    check_answer(bridge, request)


# -- query strings ----------------------------------------------------------------------------
query_values = st.sampled_from(["png", "tiff", "jpeg", "webp", "raw", "bmp", "", "1", "0", "8",
                                "16", "32", "-1", "101", "1e9", "999999999999999999999", "%00",
                                "%ff", "..%2f..", "a" * 3000, "NaN"]) | st.text(max_size=6)


@fuzz_settings(70)
@given(st.sampled_from(["result", "result/image", "result/image/mask", "result/nope", "thumbnail",
                        "preview", "log", "reports", "queue", "jobs"]),
       st.dictionaries(st.sampled_from(["format", "quality", "depth", "full", "size", "lines",
                                        "token", "x"]), query_values, max_size=4),
       st.booleans())
def test_query_strings(bridge: Bridge, what: str, query: dict[str, str], token: bool) -> None:
    from urllib.parse import quote

    job = done_job(bridge)
    base = {"log": "/v1/log", "reports": "/v1/reports", "queue": "/v1/queue",
            "jobs": "/v1/jobs"}.get(what, f"/v1/jobs/{job}/{what}")
    target = base + "?" + "&".join(f"{quote(k)}={quote(v, safe='%')}" for k, v in query.items())
    check_answer(bridge, raw_request(bridge, "GET", target, {}, token=token))


_done: dict[int, str] = {}


def done_job(b: Bridge) -> str:
    """A finished job with a masked layer (passthrough keeps the mask out; upscale none):
    one passthrough on a PNG, made once per server."""
    if b.port not in _done:
        r = b.submit("passthrough", PNG)
        _done[b.port] = r.json()["id"]
        assert b.wait(_done[b.port])["state"] == "done"
    return _done[b.port]


# -- settings ---------------------------------------------------------------------------------
setting_values = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats()
                  | st.text(max_size=10) | st.sampled_from(["~nobody/models", "~no-such-user/x",
                                                            "/proc/self", "relative/dir", "\x00"])
                  | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))


@fuzz_settings(40)
@given(st.dictionaries(st.sampled_from(["port", "models_dir", "memory_budget_mb",
                                        "default_models", "other"]), setting_values, max_size=3)
       | st.lists(st.integers(), max_size=2) | st.text(max_size=10))
def test_settings_bodies(bridge: Bridge, body) -> None:
    data = json.dumps(body).encode()
    check_answer(bridge, raw_request(bridge, "PUT", "/v1/settings",
                                     {"Content-Type": "application/json"}, data))
    # The settings file is only ever written with checked values: it must still load.
    settings_file = bridge.home / "config" / "config.toml"
    if settings_file.exists():
        import tomllib

        tomllib.loads(settings_file.read_text())


# -- what the fuzzer found, said precisely ----------------------------------------------------
@pytest.mark.parametrize("name,needle", [
    ("no-boundary", "multipart body is malformed"),
    ("empty-boundary", "multipart body is malformed"),
    ("long-part-header", "multipart body is malformed"),
    ("recipe-no-boundary", "multipart body is malformed"),
    ("not-utf8-text-part", "is not UTF-8 text"),
    ("duplicated-image", "part 'image' appears more than once"),
])
def test_malformed_bodies_are_400_saying_why(bridge: Bridge, name: str, needle: str) -> None:
    from tests.hardening.fuzzing import CORPUS

    template = (CORPUS / "http" / f"{name}.http").read_bytes()
    status, body = check_answer(bridge, from_template(bridge, template))
    assert status == 400, body
    assert needle in json.loads(body)["error"]["message"]
