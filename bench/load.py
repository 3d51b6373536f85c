"""Load figures of the real bridge: 50 clients, event streams and a health prober, one run.

Starts `retouch-bridge serve` on a free loopback port in a temporary RB_HOME, times
GET /v1/health on the idle server, then runs tests/hardening/loadgen.py against it
(clients submitting, polling, fetching, cancelling jobs of mixed sizes and sending
invalid requests, WebSockets on /v1/events) and prints, measured in this run:
throughput, request latency percentiles, /v1/health p50/p99 idle and while the
worker is busy (and their ratio), the server's RSS at start, peak (VmHWM) and end,
and the checks the test asserts (lost jobs, 5xx, missing events, wrong results).
Exits non-zero if any of those checks fails.

    .venv/bin/python bench/load.py [--clients 50 --duration 30 --sockets 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hardening.loadgen import LoadConfig, LoadReport, start_prober
from tests.hardening.loadgen import run_load as run
from tests.support.server import running_bridge


def idle_health(port: int, seconds: float, interval: float) -> list[float]:
    prober = start_prober(port, interval)
    time.sleep(seconds)
    out, _ = prober.communicate("")
    return json.loads(out)["samples"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--sockets", type=int, default=4, help="/v1/events WebSockets")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    config = LoadConfig(clients=args.clients, duration_s=args.duration,
                        max_requests=args.max_requests, event_sockets=args.sockets, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="rb-load-") as home, \
            running_bridge(Path(home), env={"RB_RESULT_TTL": "3600"}) as bridge:
        idle = idle_health(bridge.port, 3.0, config.health_interval_s)
        report = run(bridge.url, bridge.token, bridge.proc.pid, config)
        alive = bridge.alive()
    pct = LoadReport.percentile
    print("\n".join(report.lines()))
    busy99, idle99 = report.health_p99_ms, pct(idle, 99)
    print(f"/v1/health idle: n={len(idle)}  p50 {pct(idle, 50):.1f} ms  p99 {idle99:.1f} ms; "
          f"busy/idle p99 ratio {busy99 / idle99:.1f}")
    checks = {
        "no 5xx": not report.server_errors,
        "no unexpected answers": not report.unexpected,
        "no lost job": not report.lost,
        "every final state in every event stream": not report.missing_events
                                                   and not report.event_mismatch,
        "every result right": not report.wrong_results,
        "health p99 < 100 ms while busy": busy99 < 100,
        "server alive": alive,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    for line in (report.server_errors + report.unexpected + report.wrong_results)[:10]:
        print("   ", line)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
