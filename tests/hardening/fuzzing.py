"""What the fuzz tests share: the contract every upload path keeps, a hang guard, the corpus.

The contract: hostile input ends in a result or in a BridgeError the client can act
on (a 4xx with a message), never another exception (a 500), never a hang.

Found crashers are kept under tests/fuzz_corpus/<target>/ and replayed by
tests/hardening/test_fuzz_corpus.py on every run. When an example breaks the
contract, `contract()` writes it there (the smallest of the run), so a failure
leaves its input behind to be committed with the fix.

Example counts: a few dozen per target by default (fixed seeds: the same examples on
every run), RB_FUZZ_EXAMPLES=N for more, and RB_LONG_TESTS=1 for 10x with fresh seeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from bridge.errors import BridgeError

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz_corpus"
LONG = bool(os.environ.get("RB_LONG_TESTS"))
CLIENT_ERRORS = (400, 404, 409, 413, 415)


def examples(default: int) -> int:
    if os.environ.get("RB_FUZZ_EXAMPLES"):
        return int(os.environ["RB_FUZZ_EXAMPLES"])
    return default * 10 if LONG else default


def fuzz_settings(default: int) -> settings:
    """Hypothesis settings for a fuzz target: no database in the repo, seeds fixed in CI."""
    return settings(max_examples=examples(default), deadline=None, database=None,
                    derandomize=not LONG, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


class Hang(AssertionError):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail (Hang) if the block runs longer than `seconds` (main thread, POSIX)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer after {seconds} s: a hang on hostile input")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_kept: dict[str, Path] = {}


def keep(target: str, data: bytes, suffix: str = ".bin") -> Path:
    """Save an input that broke the contract, named by its content.

    While hypothesis shrinks a failure it breaks the contract many times over; only the
    smallest input of this run is kept for each target.
    """
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(data).hexdigest()[:16] + suffix)
    previous = _kept.get(target)
    if previous is not None and previous != path:
        if previous.exists() and previous.stat().st_size <= len(data):
            return previous
        previous.unlink(missing_ok=True)
    path.write_bytes(data)
    _kept[target] = path
    return path


def corpus(target: str) -> list[Path]:
    folder = CORPUS / target
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def contract(target: str, data: bytes, fn: Callable[[], Any], *, seconds: float = 20,
             statuses: tuple[int, ...] = CLIENT_ERRORS, suffix: str = ".bin") -> Any:
    """Run fn: its value, or the BridgeError it raised (a client error with a message).
    Anything else (another exception, a 5xx, a hang) fails the test, and `data` is
    kept in the corpus for the replay test."""
    try:
        with time_limit(seconds):
            return fn()
    except BridgeError as e:
        if e.status not in statuses or not e.message or e.code == "internal_error":
            where = keep(target, data, suffix)
            raise AssertionError(f"{target}: {e.status} {e.code} {e.message!r} "
                                 f"(input kept as {where.relative_to(ROOT)})") from e
        return e
    except Exception as e:
        where = keep(target, data, suffix)
        raise AssertionError(f"{target}: {type(e).__name__}: {e} "
                             f"(input kept as {where.relative_to(ROOT)})") from e
