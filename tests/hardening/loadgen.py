"""A bounded load generator for the real bridge: many clients, event streams, a health prober.

`run_load(url, token, pid, config)` drives a running bridge (loopback only) with
`config.clients` asyncio clients that submit jobs of mixed sizes (passthrough with a
delay, small Lanczos upscales, raw and PNG uploads), poll them, fetch and check their
results, cancel some, and send invalid requests, while `config.event_sockets`
WebSockets listen to /v1/events. It stops by itself: after `duration_s` of load, or
`max_requests` requests, whichever comes first; then it waits (at most
`drain_timeout_s`) for every accepted job to finish. Meanwhile:

* a prober in a separate process times GET /v1/health (a separate process so the
  load clients' own event loop and GIL do not inflate the figure);
* the server's VmRSS/VmHWM are sampled from /proc;
* GET /v1/queue is sampled to show the worker really was busy.

The returned `LoadReport` holds everything the test asserts and bench/load.py prints.
Used by tests/hardening/test_load.py and bench/load.py.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np

from tests.hardening.procinfo import memory_kb

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("done", "failed", "cancelled")


@dataclass
class LoadConfig:
    clients: int = 50
    duration_s: float = 20.0
    max_requests: int = 5000
    drain_timeout_s: float = 90.0
    event_sockets: int = 4
    health_interval_s: float = 0.02
    # Longest a client honours Retry-After before trying again (the load stays bounded).
    max_backoff_s: float = 1.0
    seed: int = 1


@dataclass
class Submitted:
    id: str
    kind: str
    sent: bytes  # raw pixels sent (passthrough raw: the result must be these bytes)
    width: int
    height: int
    expect_width: int
    expect_height: int
    fmt: str
    channels: int
    fetched: bool = False

    @property
    def held_bytes(self) -> int:
        """What the server keeps for this job once done: the source, and a new result
        image unless the result is the source itself (passthrough)."""
        result = self.expect_width * self.expect_height * self.channels
        return len(self.sent) + (result if self.kind == "upscale" else 0)


@dataclass
class LoadReport:
    config: LoadConfig
    seconds_load: float = 0.0
    seconds_total: float = 0.0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # any 5xx, with what was asked
    unexpected: list[str] = field(default_factory=list)  # a 4xx where 2xx was due, or the reverse
    accepted: int = 0
    refused_busy: int = 0
    final_states: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # accepted but never final
    missing_events: dict[int, list[str]] = field(default_factory=dict)  # socket -> ids
    event_mismatch: list[str] = field(default_factory=list)  # final event != final status
    wrong_results: list[str] = field(default_factory=list)
    results_checked: int = 0
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    health_ms: list[float] = field(default_factory=list)
    health_errors: int = 0
    busy_samples: list[bool] = field(default_factory=list)
    rss_kb: list[tuple[float, int]] = field(default_factory=list)
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    hwm_start_kb: int = 0
    hwm_end_kb: int = 0
    finished_jobs: int = 0
    # Bytes of pixels the server must hold at the end (done jobs keep source and result).
    held_bytes: int = 0

    # -- figures -------------------------------------------------------------------
    @staticmethod
    def percentile(values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[k]

    @property
    def health_p99_ms(self) -> float:
        return self.percentile(self.health_ms, 99)

    @property
    def busy_fraction(self) -> float:
        return sum(self.busy_samples) / len(self.busy_samples) if self.busy_samples else 0.0

    @property
    def rss_peak_kb(self) -> int:
        return max([kb for _, kb in self.rss_kb] + [self.hwm_end_kb])

    def lines(self) -> list[str]:
        c = self.config
        pct = self.percentile
        out = [
            f"load: {c.clients} clients, {c.event_sockets} event sockets, "
            f"{self.seconds_load:.1f}s of load, {self.seconds_total:.1f}s with the drain",
            f"requests: {self.requests} ({self.requests / max(self.seconds_load, 1e-9):.0f}/s); "
            "statuses " + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())),
            f"jobs: {self.accepted} accepted, {self.refused_busy} refused with 429; final "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.final_states.items()))
            + f"; {len(self.lost)} lost; throughput {self.finished_jobs / max(self.seconds_total, 1e-9):.1f}"
              " jobs/s",
            f"results checked byte for byte or by size: {self.results_checked}, "
            f"wrong: {len(self.wrong_results)}",
        ]
        for name in sorted(self.latency_ms):
            v = self.latency_ms[name]
            out.append(f"latency {name:<8} n={len(v):5d}  p50 {pct(v, 50):7.1f} ms  "
                       f"p95 {pct(v, 95):7.1f} ms  p99 {pct(v, 99):7.1f} ms  max {max(v):7.1f} ms")
        h = self.health_ms
        out.append(f"/v1/health while busy: n={len(h)}  p50 {pct(h, 50):.1f} ms  p99 "
                   f"{pct(h, 99):.1f} ms  max {max(h) if h else float('nan'):.1f} ms  "
                   f"errors {self.health_errors}; worker busy in {self.busy_fraction:.0%} of samples")
        out.append(f"server RSS: start {self.rss_start_kb / 1024:.0f} MB (warm), peak "
                   f"{self.rss_peak_kb / 1024:.0f} MB (VmHWM), end {self.rss_end_kb / 1024:.0f} MB; "
                   f"results held at the end {self.held_bytes / 2**20:.0f} MB")
        return out


# -- payloads ----------------------------------------------------------------------------
def _pixels(rng: random.Random, w: int, h: int, c: int) -> np.ndarray:
    gen = np.random.default_rng(rng.getrandbits(32))
    return gen.integers(0, 256, (h, w, c), dtype=np.uint8)


def valid_job(rng: random.Random) -> tuple[list[tuple[str, bytes | str]], Submitted]:
    """The parts of one valid submission, and what its result must be."""
    kind = rng.choices(["pass-raw", "pass-png", "upscale"], [4, 2, 3])[0]
    w, h = rng.randint(16, 160), rng.randint(16, 160)
    c = rng.choice([1, 3, 4])
    px = _pixels(rng, w, h, c)
    parts: list[tuple[str, bytes | str]]
    if kind == "upscale":
        scale = rng.choice([1.5, 2.0])
        parts = [("op", "upscale"), ("params", json.dumps({"scale": scale, "model": "lanczos"}))]
        ew, eh = round(w * scale), round(h * scale)
    else:
        delay = rng.choice([0.0, 0.02, 0.05, 0.1, 0.3])
        parts = [("op", "passthrough"), ("params", json.dumps({"delay_s": delay}))]
        ew, eh = w, h
    if kind == "pass-png":
        ok, enc = cv2.imencode(".png", px)
        assert ok
        parts.append(("image", enc.tobytes()))
        fmt = "png"
    else:
        parts.append(("raw", json.dumps({"width": w, "height": h, "channels": c, "depth": 8})))
        parts.append(("image", px.tobytes()))
        fmt = "raw"
    if rng.random() < 0.3:
        parts.append(("priority", "batch"))
    return parts, Submitted("", kind, px.tobytes(), w, h, ew, eh, fmt, c)


# name -> (parts, expected status)
def invalid_request(rng: random.Random) -> tuple[str, list[tuple[str, bytes | str]], int]:
    px = _pixels(rng, 8, 8, 3).tobytes()
    raw8 = json.dumps({"width": 8, "height": 8, "channels": 3, "depth": 8})
    cases: list[tuple[str, list[tuple[str, bytes | str]], int]] = [
        ("unknown-op", [("op", "no-such-op"), ("raw", raw8), ("image", px)], 404),
        ("bad-param", [("op", "passthrough"), ("params", '{"delay_s": -1}'), ("raw", raw8),
                       ("image", px)], 400),
        ("not-json", [("op", "passthrough"), ("params", "{delay"), ("raw", raw8), ("image", px)],
         400),
        ("lying-raw", [("op", "passthrough"),
                       ("raw", json.dumps({"width": 9, "height": 8, "channels": 3, "depth": 8})),
                       ("image", px)], 400),
        ("garbage", [("op", "passthrough"), ("image", bytes(rng.getrandbits(8) for _ in range(64)))],
         415),
        ("no-image", [("op", "passthrough")], 400),
        ("unknown-part", [("op", "passthrough"), ("raw", raw8), ("image", px), ("extra", "1")], 400),
    ]
    return rng.choice(cases)


def form(parts: list[tuple[str, bytes | str]]) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in parts:
        if isinstance(value, bytes):
            data.add_field(name, value, filename=name, content_type="application/octet-stream")
        else:
            data.add_field(name, value)
    return data


# -- the health prober (its own process) -----------------------------------------------------
def probe_health(port: int, interval: float) -> None:
    """Time GET /v1/health until stdin closes; print the samples (ms) and errors as JSON.

    Run as `python -c "from tests.hardening.loadgen import probe_health; probe_health(P, I)"`.
    """
    import sys
    import threading

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    samples: list[float] = []
    errors = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/v1/health", headers={"Host": f"127.0.0.1:{port}"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                samples.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        stop.wait(interval)
    conn.close()
    print(json.dumps({"samples": samples, "errors": errors}), flush=True)


def start_prober(port: int, interval: float) -> subprocess.Popen[str]:
    code = f"from tests.hardening.loadgen import probe_health; probe_health({port}, {interval})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


# -- the run ---------------------------------------------------------------------------------
class _Run:
    def __init__(self, url: str, token: str, pid: int, config: LoadConfig,
                 report: LoadReport) -> None:
        self.url = url
        self.token = token
        self.pid = pid
        self.config = config
        self.report = report
        self.headers = {"Authorization": f"Bearer {token}"}
        self.jobs: dict[str, Submitted] = {}
        self.final_status: dict[str, str] = {}
        self.seen: list[dict[str, str]] = [{} for _ in range(config.event_sockets)]
        self.load_over = asyncio.Event()
        self.all_over = asyncio.Event()
        self.deadline = 0.0

    def budget_left(self) -> bool:
        return (not self.load_over.is_set() and time.monotonic() < self.deadline
                and self.report.requests < self.config.max_requests)

    async def call(self, session: aiohttp.ClientSession, method: str, path: str, label: str,
                   **kw: Any) -> tuple[int, dict[str, str], bytes]:
        headers = {**self.headers, **kw.pop("headers", {})}
        t0 = time.perf_counter()
        async with session.request(method, self.url + path, headers=headers, **kw) as resp:
            body = await resp.read()
            status = resp.status
            hdrs = dict(resp.headers)
        self.report.latency_ms[label].append((time.perf_counter() - t0) * 1000)
        self.report.requests += 1
        self.report.statuses[status] += 1
        self.report.by_kind[label] += 1
        if status >= 500:
            self.report.server_errors.append(f"{method} {path} ({label}): {status} {body[:300]!r}")
        return status, hdrs, body

    # -- one client -----------------------------------------------------------------------
    async def client(self, n: int) -> None:
        rng = random.Random(self.config.seed * 1000 + n)
        mine: list[str] = []
        async with aiohttp.ClientSession() as session:
            while self.budget_left():
                await asyncio.sleep(rng.uniform(0, 0.05))
                r = rng.random()
                if r < 0.5:
                    await self.submit(session, rng, mine)
                elif r < 0.62:
                    await self.invalid(session, rng)
                elif r < 0.72 and mine:
                    await self.cancel(session, rng.choice(mine))
                elif mine:
                    await self.poll(session, rng.choice(mine))

    async def submit(self, session: aiohttp.ClientSession, rng: random.Random,
                     mine: list[str]) -> None:
        parts, sub = valid_job(rng)
        status, hdrs, body = await self.call(session, "POST", "/v1/jobs", "submit",
                                             data=form(parts))
        if status == 202:
            sub.id = json.loads(body)["id"]
            self.jobs[sub.id] = sub
            mine.append(sub.id)
            self.report.accepted += 1
        elif status == 429:
            self.report.refused_busy += 1
            wait = min(float(hdrs.get("Retry-After", "1")), self.config.max_backoff_s)
            await asyncio.sleep(wait * rng.uniform(0.5, 1.0))
        elif status < 500:
            self.report.unexpected.append(f"valid {sub.kind} submission answered {status}: "
                                          f"{body[:200]!r}")

    async def invalid(self, session: aiohttp.ClientSession, rng: random.Random) -> None:
        if rng.random() < 0.15:
            status, _, _ = await self.call(session, "GET", "/v1/jobs/j-none", "invalid",
                                           headers={"Authorization": "Bearer wrong"})
            if status != 401:
                self.report.unexpected.append(f"wrong token answered {status}")
            return
        name, parts, expected = invalid_request(rng)
        status, _, body = await self.call(session, "POST", "/v1/jobs", "invalid",
                                          data=form(parts))
        if status != expected and status != 429:
            self.report.unexpected.append(f"invalid '{name}' answered {status}, expected "
                                          f"{expected}: {body[:200]!r}")

    async def cancel(self, session: aiohttp.ClientSession, job_id: str) -> None:
        status, _, body = await self.call(session, "DELETE", f"/v1/jobs/{job_id}", "cancel")
        if status not in (200, 202):
            self.report.unexpected.append(f"cancel answered {status}: {body[:200]!r}")

    async def poll(self, session: aiohttp.ClientSession, job_id: str) -> str | None:
        status, _, body = await self.call(session, "GET", f"/v1/jobs/{job_id}", "poll")
        if status != 200:
            self.report.unexpected.append(f"status of an accepted job answered {status}")
            return None
        state = json.loads(body)["state"]
        if state in FINAL:
            self.final_status[job_id] = state
            sub = self.jobs[job_id]
            if state == "done" and not sub.fetched:
                await self.fetch(session, sub)
        return state

    async def fetch(self, session: aiohttp.ClientSession, sub: Submitted) -> None:
        status, hdrs, body = await self.call(session, "GET", f"/v1/jobs/{sub.id}/result",
                                             "result")
        if status != 200:
            self.report.wrong_results.append(f"{sub.id}: result answered {status}")
            return
        sub.fetched = True
        self.report.results_checked += 1
        w, h = int(hdrs["X-Width"]), int(hdrs["X-Height"])
        if (w, h) != (sub.expect_width, sub.expect_height) or hdrs["X-Job-Id"] != sub.id:
            self.report.wrong_results.append(f"{sub.id} ({sub.kind}): {w}x{h}, expected "
                                             f"{sub.expect_width}x{sub.expect_height}")
            return
        if sub.kind == "pass-raw" and body != sub.sent:
            self.report.wrong_results.append(f"{sub.id}: raw passthrough came back different")
        elif sub.kind == "pass-png":
            decoded = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
            if decoded is None or decoded.tobytes() != sub.sent:
                self.report.wrong_results.append(f"{sub.id}: PNG passthrough came back different")

    # -- listeners and samplers ------------------------------------------------------------
    async def events(self, index: int, ready: asyncio.Event) -> None:
        seen = self.seen[index]
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{self.url}/v1/events?token={self.token}", heartbeat=None) as ws:
            ready.set()
            while not self.all_over.is_set():
                try:
                    msg = await ws.receive(timeout=0.5)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(msg.data)
                if event.get("type") in FINAL and event.get("job"):
                    seen[event["job"]] = event["type"]

    async def sample(self, session: aiohttp.ClientSession) -> None:
        while not self.load_over.is_set():
            mem = memory_kb(self.pid)
            if mem:
                self.report.rss_kb.append((time.monotonic(), mem["VmRSS"]))
            async with session.get(self.url + "/v1/queue", headers=self.headers) as resp:
                if resp.status == 200:
                    self.report.busy_samples.append((await resp.json())["running"] is not None)
            await asyncio.sleep(0.25)

    async def drain(self, session: aiohttp.ClientSession, deadline: float) -> None:
        while time.monotonic() < deadline:
            open_ids = [i for i in self.jobs if i not in self.final_status]
            if not open_ids:
                break
            for job_id in open_ids:
                await self.poll(session, job_id)
            await asyncio.sleep(0.2)
        # Results of jobs that finished while nobody looked: fetch and check them too.
        for sub in list(self.jobs.values()):
            if self.final_status.get(sub.id) == "done" and not sub.fetched:
                await self.fetch(session, sub)


async def warm_up(url: str, token: str, rng: random.Random) -> None:
    """One job of each kind, so imports and first-use caches are not counted as growth."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        ids = []
        while len(ids) < 6:
            parts, _ = valid_job(rng)
            async with session.post(url + "/v1/jobs", data=form(parts), headers=headers) as r:
                assert r.status == 202, await r.text()
                ids.append((await r.json())["id"])
        for job_id in ids:
            async with asyncio.timeout(60):
                while True:
                    async with session.get(f"{url}/v1/jobs/{job_id}", headers=headers) as r:
                        if (await r.json())["state"] in FINAL:
                            break
                    await asyncio.sleep(0.05)


async def run_load_async(url: str, token: str, pid: int, config: LoadConfig) -> LoadReport:
    report = LoadReport(config)
    run = _Run(url, token, pid, config, report)
    port = int(url.rsplit(":", 1)[1])
    await warm_up(url, token, random.Random(config.seed))
    mem0 = memory_kb(pid)
    report.rss_start_kb, report.hwm_start_kb = mem0.get("VmRSS", 0), mem0.get("VmHWM", 0)
    readies = [asyncio.Event() for _ in range(config.event_sockets)]
    listeners = [asyncio.create_task(run.events(i, readies[i])) for i in range(config.event_sockets)]
    async with asyncio.timeout(10):
        await asyncio.gather(*(r.wait() for r in readies))
    t0 = time.monotonic()
    run.deadline = t0 + config.duration_s
    async with aiohttp.ClientSession() as session:
        sampler = asyncio.create_task(run.sample(session))
        prober = start_prober(port, config.health_interval_s)
        clients = [asyncio.create_task(run.client(n)) for n in range(config.clients)]
        await asyncio.gather(*clients)
        run.load_over.set()
        out, _ = await asyncio.get_running_loop().run_in_executor(None, prober.communicate, "")
        probed = json.loads(out)
        report.health_ms, report.health_errors = probed["samples"], probed["errors"]
        report.seconds_load = time.monotonic() - t0
        await sampler
        await run.drain(session, time.monotonic() + config.drain_timeout_s)
        report.seconds_total = time.monotonic() - t0
        # Every socket should have every job's final event; give the last ones a moment.
        wait_until = time.monotonic() + 5
        while time.monotonic() < wait_until and any(
                i not in seen for seen in run.seen for i in run.final_status):
            await asyncio.sleep(0.1)
    run.all_over.set()
    await asyncio.gather(*listeners)
    mem1 = memory_kb(pid)
    report.rss_end_kb, report.hwm_end_kb = mem1.get("VmRSS", 0), mem1.get("VmHWM", 0)

    report.lost = sorted(i for i in run.jobs if i not in run.final_status)
    report.final_states = Counter(run.final_status.values())
    report.finished_jobs = len(run.final_status)
    report.held_bytes = sum(sub.held_bytes for sub in run.jobs.values()
                            if run.final_status.get(sub.id) == "done")
    for index, seen in enumerate(run.seen):
        missing = sorted(i for i in run.final_status if i not in seen)
        if missing:
            report.missing_events[index] = missing
        report.event_mismatch += [f"{i}: event {seen[i]}, status {s}"
                                  for i, s in run.final_status.items()
                                  if i in seen and seen[i] != s]
    return report


def run_load(url: str, token: str, pid: int, config: LoadConfig | None = None) -> LoadReport:
    return asyncio.run(run_load_async(url, token, pid, config or LoadConfig()))
