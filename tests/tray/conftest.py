"""A throwaway desktop for tray tests: Xvfb, a session D-Bus and trayer as the tray host."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS = {"Xvfb": "xvfb", "trayer": "trayer", "dbus-daemon": "dbus", "xdotool": "xdotool",
         "import": "imagemagick", "xwininfo": "x11-utils"}
SCREEN = (1400, 900)


@dataclass
class Desktop:
    display: str
    env: dict[str, str]

    def run(self, *cmd: str, timeout: float = 10) -> str:
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        return out.stdout

    def tray_area(self) -> tuple[int, int, int, int]:
        """x, y, width, height of trayer's panel (where the icons sit)."""
        for line in self.run("xwininfo", "-root", "-tree").splitlines():
            if '"panel": ("panel" "trayer")' in line:
                geom = line.split(")")[-1].split()[0]  # WxH+X+Y
                size, x, y = geom.split("+")[:3]
                w, h = size.split("x")
                return int(x), int(y), int(w), int(h)
        raise AssertionError("trayer's panel is not on screen")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True,
                       timeout=20)
        return path

    def visible_windows(self, name: str) -> list[str]:
        return self.run("xdotool", "search", "--onlyvisible", "--name", name).split()


def _missing() -> list[str]:
    return [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    missing = _missing()
    if missing:
        pytest.skip("needs Debian packages " + ", ".join(missing) +
                    " (scripts/system-deps.sh installs them)")
    procs: list[subprocess.Popen[bytes]] = []
    pids: list[int] = []
    try:
        # -displayfd: Xvfb picks a free display and tells us which.
        read_fd, write_fd = os.pipe()
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0",
                                 f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                                pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(xvfb)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        assert number, "Xvfb did not report its display"
        display = f":{number}"
        bus = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1",
                              "--print-pid=1"], capture_output=True, text=True, timeout=10,
                             check=True).stdout.split()
        pids.append(int(bus[1]))
        env = {**os.environ, "DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": bus[0],
               # No accessibility bus: it would outlive the test as a stray daemon.
               "NO_AT_BRIDGE": "1", "GTK_A11Y": "none",
               "WEBKIT_DISABLE_COMPOSITING_MODE": "1", "XDG_SESSION_TYPE": "x11"}
        env.pop("WAYLAND_DISPLAY", None)
        procs.append(subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
             "--height", "24", "--transparent", "false"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        d = Desktop(display, env)
        deadline = time.monotonic() + 10
        while True:
            try:
                d.tray_area()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield d
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
