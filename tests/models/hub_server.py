"""A local imitation of the Hugging Face Hub's HTTP API (127.0.0.1 only), serving folders.

The endpoints the bridge uses, answered as the Hub answers them:
  GET /api/models/{repo}/revision/{rev}     {"id", "sha"}; 404 for an unknown revision
  GET /api/models/{repo}/tree/{rev}?recursive=true[&cursor=N]
        files and folders, `page_size` per page, the next page in a `Link: rel="next"`
        header; files have "oid" (git blob id) and, when stored in LFS (weights,
        checkpoints), "lfs": {"oid": sha256, "size", "pointerSize"}
  GET /{repo}/resolve/{rev}/{path}          small files directly; LFS files through a 302
        to /cdn/{sha256}, as the Hub redirects to its CDN; Range honoured

Each file is a `Served` (tests/models/file_server.py), so it can drop the connection or
serve other bytes than the listing promises.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.models.file_server import Served, send_served

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".onnx", ".msgpack", ".pt", ".pth")


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commit: str
    files: dict[str, Served] = field(default_factory=dict)
    # What the listing says about each file, fixed when the file is added.
    listed: dict[str, dict] = field(default_factory=dict)

    def add(self, path: str, data: bytes) -> Served:
        served = Served(data)
        self.files[path] = served
        entry: dict = {"type": "file", "path": path, "size": len(data), "oid": git_oid(data)}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                            "pointerSize": 134}
        self.listed[path] = entry
        return served

    def add_folder(self, folder: Path) -> None:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                self.add(p.relative_to(folder).as_posix(), p.read_bytes())

    def tree(self) -> list[dict]:
        """Files and their folders, in the Hub's order (a folder before what it holds)."""
        out, folders = [], set()
        for path in sorted(self.listed):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder not in folders:
                    folders.add(folder)
                    out.append({"type": "directory", "path": folder, "size": 0,
                                "oid": hashlib.sha1(folder.encode()).hexdigest()})
            out.append(self.listed[path])
        return out


@dataclass
class HubServer:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    page_size: int = 4
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def repo(self, repo_id: str, commit: str = "c0ffee" * 6 + "c0ff") -> Repo:
        return self.repos.setdefault(repo_id, Repo(commit))

    def downloads(self, repo_id: str) -> list[str]:
        """The files fetched through /resolve/, in order (one entry per request)."""
        prefix = f"/{repo_id}/resolve/"
        return [urllib.parse.unquote(p[len(prefix):].split("/", 1)[1])
                for p, _ in self.requests if p.startswith(prefix)]

    def ranges(self, repo_id: str, path: str) -> list[str | None]:
        """The Range header of each request for a file's bytes (None: the whole file)."""
        repo = self.repos[repo_id]
        lfs = repo.listed[path].get("lfs")
        want = (f"/cdn/{lfs['oid']}" if lfs
                else f"/{repo_id}/resolve/{repo.commit}/{urllib.parse.quote(path)}")
        return [h.get("Range") for p, h in self.requests if p == want]

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _json(self, data: object, headers: dict[str, str] | None = None,
                      status: int = 200) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _repo(self, repo_id: str, rev: str) -> Repo | None:
                repo = owner.repos.get(repo_id)
                if repo is None or urllib.parse.unquote(rev) not in (repo.commit, "main"):
                    self._json({"error": "Revision Not Found"}, status=404)
                    return None
                return repo

            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers.items())))
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 6:
                    repo_id, kind, rev = "/".join(parts[2:4]), parts[4], parts[5]
                    repo = self._repo(repo_id, rev)
                    if repo is None:
                        return
                    if kind == "revision":
                        self._json({"id": repo_id, "sha": repo.commit})
                        return
                    query = urllib.parse.parse_qs(url.query)
                    entries = repo.tree()
                    if query.get("recursive") != ["true"]:
                        entries = [e for e in entries if "/" not in e["path"]]
                    start = int(query.get("cursor", ["0"])[0])
                    page = entries[start:start + owner.page_size]
                    headers = {}
                    if start + owner.page_size < len(entries):
                        nxt = f"{url.path}?recursive=true&cursor={start + owner.page_size}"
                        headers["Link"] = f'<{owner.endpoint}{nxt}>; rel="next"'
                    self._json(page, headers)
                    return
                if parts[0] == "cdn" and len(parts) == 2:
                    for repo in owner.repos.values():
                        for path, entry in repo.listed.items():
                            if entry.get("lfs", {}).get("oid") == parts[1]:
                                send_served(self, repo.files[path])
                                return
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo = self._repo("/".join(parts[:2]), parts[3])
                    if repo is None:
                        return
                    path = urllib.parse.unquote("/".join(parts[4:]))
                    entry = repo.listed.get(path)
                    if entry is None:
                        self._json({"error": "Entry not found"}, status=404)
                    elif "lfs" in entry:
                        self.send_response(302)
                        self.send_header("Location", f"/cdn/{entry['lfs']['oid']}")
                        self.send_header("X-Repo-Commit", repo.commit)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        send_served(self, repo.files[path])
                    return
                self._json({"error": "not found"}, status=404)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
