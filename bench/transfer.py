"""Transfer cost of a 6000x4000 RGBA 16-bit image through the bridge, measured side by side.

Three round trips of the same 192 MB of pixels over loopback, in one run:
  socket     a plain TCP echo (the floor: what moving the bytes costs)
  bridge     upload to /v1/jobs as a raw body, passthrough, download raw
  multipart  the same with a multipart upload (the general path)
  base64     the same pixels as base64 inside JSON, decoded and re-encoded by a server

Targets: bridge / socket <= 2.0 and base64 / bridge >= 3.0.

    .venv/bin/python bench/transfer.py [--width 6000 --height 4000 --repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server import multipart, running_bridge


def socket_echo_round_trip(payload: bytes) -> float:
    """Send payload to a loopback echo server and read it all back."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    size = len(payload)

    def serve() -> None:
        conn, _ = srv.accept()
        buf = bytearray(size)
        view, got = memoryview(buf), 0
        while got < size:
            got += conn.recv_into(view[got:], min(1 << 20, size - got))
        conn.sendall(buf)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(payload)
        back = bytearray(size)
        view, got = memoryview(back), 0
        while got < size:
            got += c.recv_into(view[got:], min(1 << 20, size - got))
    elapsed = time.perf_counter() - start
    t.join()
    srv.close()
    assert back == payload
    return elapsed


def read_body_into(bridge, path: str, size: int) -> bytearray:
    """GET into one preallocated buffer, as a client that knows the size (X-Width...) would."""
    conn = http.client.HTTPConnection("127.0.0.1", bridge.port, timeout=600)
    conn.request("GET", path, headers={"Authorization": f"Bearer {bridge.token}"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()[:200]
    length = int(resp.getheader("Content-Length"))
    assert length == size
    buf = bytearray(length)
    view, got = memoryview(buf), 0
    while got < length:
        n = resp.readinto(view[got:])
        if not n:
            raise ConnectionError("short body")
        got += n
    conn.close()
    return buf


def bridge_round_trip(bridge, pixels: np.ndarray, mode: str) -> float:
    h, w, c = pixels.shape
    start = time.perf_counter()
    if mode == "multipart":
        raw = json.dumps({"width": w, "height": h, "channels": c, "depth": 16})
        body, ctype = multipart([("op", "passthrough", None), ("raw", raw, None),
                                 ("image", pixels.data, "application/octet-stream")])
        headers = {"Content-Type": ctype}
    else:  # the raw-body fast path for one large buffer
        body = pixels.data
        headers = {"Content-Type": "application/octet-stream", "X-Op": "passthrough",
                   "X-Width": str(w), "X-Height": str(h), "X-Channels": str(c), "X-Depth": "16"}
    r = bridge.request("POST", "/v1/jobs", body, headers=headers, timeout=600)
    assert r.status == 202, r.body[:200]
    job = r.json()["id"]
    bridge.wait(job, timeout=600)
    back = read_body_into(bridge, f"/v1/jobs/{job}/result?format=raw", pixels.nbytes)
    elapsed = time.perf_counter() - start
    assert back[:4096] == pixels.data.cast("B")[:4096]
    return elapsed


def base64_round_trip(port: int, pixels: np.ndarray) -> float:
    h, w, c = pixels.shape
    start = time.perf_counter()
    doc = json.dumps({"op": "passthrough", "width": w, "height": h, "channels": c, "depth": 16,
                      "image": base64.b64encode(pixels.data).decode("ascii")}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/b64", data=doc,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        answer = json.loads(resp.read())
    back = base64.b64decode(answer["image"])
    elapsed = time.perf_counter() - start
    assert len(back) == pixels.nbytes
    return elapsed


def start_base64_server() -> tuple[int, threading.Thread]:
    """An aiohttp server that does what a base64-JSON API must: parse, decode, encode."""
    import asyncio

    from aiohttp import web

    ready = threading.Event()
    holder: dict[str, int] = {}

    async def handler(request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        pixels = np.frombuffer(base64.b64decode(doc["image"]), np.uint16)
        out = {"width": doc["width"], "height": doc["height"],
               "image": base64.b64encode(pixels.data).decode("ascii")}
        return web.Response(body=json.dumps(out).encode(), content_type="application/json")

    def run() -> None:
        async def main() -> None:
            app = web.Application(client_max_size=4 << 30)
            app.router.add_post("/b64", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(10)
    return holder["port"], t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--height", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 65536, (args.height, args.width, 4), dtype=np.uint16)
    mb = pixels.nbytes / 1e6
    print(f"image: {args.width}x{args.height} RGBA 16-bit = {mb:.0f} MB; best of {args.repeat}")

    b64_port, _ = start_base64_server()
    with tempfile.TemporaryDirectory() as home, running_bridge(
            Path(home), "--max-body-mb", "4096", "--max-pixels", str(args.width * args.height)) as b:
        times: dict[str, list[float]] = {"socket": [], "bridge": [], "multipart": [], "base64": []}
        payload = pixels.tobytes()
        for _ in range(args.repeat):  # interleaved, so drift hits every method alike
            times["socket"].append(socket_echo_round_trip(payload))
            times["bridge"].append(bridge_round_trip(b, pixels, "raw"))
            times["multipart"].append(bridge_round_trip(b, pixels, "multipart"))
            times["base64"].append(base64_round_trip(b64_port, pixels))

    best = {k: min(v) for k, v in times.items()}
    for name, values in times.items():
        print(f"  {name:<9} best {best[name]:7.3f} s  median {statistics.median(values):7.3f} s"
              f"  ({2 * mb / best[name]:7.0f} MB/s both ways)")
    print(f"bridge / socket copy : {best['bridge'] / best['socket']:.2f}x  (target <= 2.0; raw body)")
    print(f"multipart / socket   : {best['multipart'] / best['socket']:.2f}x  (information)")
    print(f"base64 JSON / bridge : {best['base64'] / best['bridge']:.2f}x  (target >= 3.0)")


if __name__ == "__main__":
    main()
