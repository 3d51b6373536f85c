"""The real bridge in a subprocess on a free port, and a small HTTP client for tests."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


def multipart(fields: Iterable[tuple[str, bytes | str, str | None]]) -> tuple[bytes, str]:
    """(name, value, content type or None) -> (body, Content-Type header)."""
    boundary = "rb-" + uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value, ctype in fields:
        data = value.encode() if isinstance(value, str) else value
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
        if ctype:
            head += f'; filename="{name}"\r\nContent-Type: {ctype}'
        chunks += [head.encode(), b"\r\n\r\n", data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


@dataclass
class Bridge:
    url: str
    port: int
    token: str
    home: Path
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, body: bytes | memoryview | None = None,
                headers: dict[str, str] | None = None, token: str | bool | None = True,
                timeout: float = 120) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = {"Host": f"127.0.0.1:{self.port}"}
        if token is True:
            hdrs["Authorization"] = f"Bearer {self.token}"
        elif isinstance(token, str):
            hdrs["Authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        data = memoryview(body if body is not None else b"").cast("B")
        conn.putheader("Content-Length", str(data.nbytes))
        conn.endheaders(data)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return Reply(resp.status, {k: v for k, v in resp.getheaders()}, data)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post_form(self, path: str, fields: Iterable[tuple[str, bytes | str, str | None]],
                  **kw: Any) -> Reply:
        body, ctype = multipart(fields)
        headers = {"Content-Type": ctype, **kw.pop("headers", {})}
        return self.request("POST", path, body, headers=headers, **kw)

    def submit(self, op: str, image: bytes, params: dict[str, Any] | None = None,
               mask: bytes | None = None, raw: dict[str, int] | None = None,
               priority: str | None = None) -> Reply:
        fields: list[tuple[str, bytes | str, str | None]] = [("op", op, None)]
        if params is not None:
            fields.append(("params", json.dumps(params), None))
        if raw is not None:
            fields.append(("raw", json.dumps(raw), None))
        if priority:
            fields.append(("priority", priority, None))
        fields.append(("image", image, "application/octet-stream"))
        if mask is not None:
            fields.append(("mask", mask, "application/octet-stream"))
        return self.post_form("/v1/jobs", fields)

    def wait(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get(f"/v1/jobs/{job_id}").json()
            if status["state"] in ("done", "failed", "cancelled"):
                return status
            time.sleep(0.02)
        raise TimeoutError(f"job {job_id} did not finish in {timeout}s")

    def alive(self) -> bool:
        return self.proc.poll() is None and self.get("/v1/health", token=False).status == 200


@contextmanager
def running_bridge(home: Path, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 30, port: int | None = None) -> Iterator[Bridge]:
    """`serve` on `port` (default: a free one; 0: the bridge picks), ready to talk to."""
    port = free_port() if port is None else port
    full_env = {**os.environ, "RB_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve", "--port", str(port), *args],
        cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "listening on" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout):
        proc.kill()
        raise RuntimeError("bridge did not start:\n" + "".join(output))
    # The port it says it listens on: with --port 0 only the bridge knows it.
    said = next((m for m in map(LISTENING.search, output) if m), None)
    port = int(said[1]) if said else port
    token = (home / "config" / "token").read_text().strip()
    bridge = Bridge(f"http://127.0.0.1:{port}", port, token, home, proc, output)
    try:
        yield bridge
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
