"""Batch progress for people: a bar with count, rate and ETA on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

BAR = 28
LINE_EVERY_S = 10.0


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.enabled = enabled
        self.total = self.todo = self.done = self.failed = 0
        self.started = time.monotonic()
        self._last_line = 0.0
        self._last_pct = -1

    def start(self, total: int, skipped: int) -> None:
        self.total, self.todo = total, total - skipped
        self.started = time.monotonic()
        if self.enabled:
            note = f" ({skipped} already done, skipped)" if skipped else ""
            self._print(f"batch: {self.todo} of {total} files to process{note}", newline=True)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.finished / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate()
        return (self.todo - self.finished) / rate if rate > 0 else None

    def update(self, record: dict[str, Any]) -> None:
        if record.get("status") == "done":
            self.done += 1
        else:
            self.failed += 1
            if self.enabled:
                err = (record.get("error") or {}).get("message", "failed")
                self._print(f"failed: {record.get('input')}: {err}", newline=True)
        if self.enabled:
            self._show()

    def _status(self) -> str:
        eta = self.eta()
        return (f"{self.finished}/{self.todo} ({self.failed} failed) "
                f"{self.rate():.1f} img/s ETA {_duration(eta) if eta is not None else '?'}")

    def _show(self) -> None:
        if self.tty:
            frac = self.finished / max(1, self.todo)
            filled = int(frac * BAR)
            self._print(f"[{'#' * filled}{'.' * (BAR - filled)}] {self._status()}")
            return
        now = time.monotonic()
        pct = int(100 * self.finished / max(1, self.todo)) // 10
        if pct != self._last_pct or now - self._last_line >= LINE_EVERY_S \
                or self.finished == self.todo:
            self._last_pct, self._last_line = pct, now
            self._print(f"batch: {self._status()}", newline=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _print(self, text: str, newline: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if newline else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
