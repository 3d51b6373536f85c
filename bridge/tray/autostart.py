"""Start at login: an XDG autostart .desktop file (Linux), a LaunchAgent plist (macOS),
a command file in the Startup folder (Windows).

Every format can be generated on any OS (`entry_for`), so each is testable anywhere;
`enable`/`disable`/`is_enabled` act on the current OS's. All of them start the tray
hidden: at login the bridge runs in the background, the dashboard opens on demand.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

APP_ID = "retouch-bridge"
LABEL = "org.retouchbridge.tray"
NAME = "Retouch Bridge"


@dataclass(frozen=True)
class Entry:
    path: Path
    content: bytes


def current_os() -> str:
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "windows"
    return "linux"


def launch_command(os_name: str | None = None) -> list[str]:
    """How to start the tray at login: this Python, so the same environment runs."""
    python = sys.executable
    if (os_name or current_os()) == "windows":
        # pythonw has no console window; fall back to python where it is absent.
        candidate = Path(python).with_name("pythonw.exe")
        if candidate.exists():
            python = str(candidate)
    return [python, "-m", "bridge", "tray", "--hidden"]


def _home(home: Path | None) -> Path:
    return home if home is not None else Path.home()


def path_for(os_name: str, home: Path | None = None) -> Path:
    h = _home(home)
    if os_name == "linux":
        base = os.environ.get("XDG_CONFIG_HOME") if home is None else None
        return Path(base or h / ".config") / "autostart" / f"{APP_ID}.desktop"
    if os_name == "macos":
        return h / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    if os_name == "windows":
        appdata = os.environ.get("APPDATA") if home is None else None
        root = Path(appdata) if appdata else h / "AppData" / "Roaming"
        return root / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup" / f"{NAME}.cmd"
    raise ValueError(f"unknown OS {os_name!r}")


def _desktop_quote(arg: str) -> str:
    """Quote one Exec argument as the Desktop Entry spec wants (and escape % codes)."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def desktop_file(command: list[str]) -> bytes:
    exec_line = " ".join(_desktop_quote(a) for a in command)
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",
        f"Name={NAME}",
        "Comment=Local AI companion for Photoshop and Lightroom Classic",
        f"Exec={exec_line}",
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        "X-GNOME-Autostart-Delay=5",
        "Categories=Graphics;",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def launch_agent(command: list[str], log_dir: Path | None = None) -> bytes:
    plist: dict[str, object] = {
        "Label": LABEL,
        "ProgramArguments": command,
        "RunAtLoad": True,
        # Quit from the menu means quit: launchd must not start it again.
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    if log_dir is not None:
        plist["StandardOutPath"] = str(log_dir / "tray.out.log")
        plist["StandardErrorPath"] = str(log_dir / "tray.err.log")
    return plistlib.dumps(plist)


def _cmd_quote(arg: str) -> str:
    return f'"{arg}"' if any(c in arg for c in ' &()[]{}^=;!\'+,`~') else arg


def startup_cmd(command: list[str]) -> bytes:
    # `start ""` returns at once, so the console window the .cmd opens closes right away.
    line = 'start "" ' + " ".join(_cmd_quote(a) for a in command)
    return ("@echo off\r\nrem " + NAME + " at login (remove this file to stop it)\r\n"
            + line + "\r\n").encode("utf-8")


def entry_for(os_name: str, home: Path | None = None, command: list[str] | None = None,
              log_dir: Path | None = None) -> Entry:
    command = command or launch_command(os_name)
    if os_name == "linux":
        content = desktop_file(command)
    elif os_name == "macos":
        content = launch_agent(command, log_dir)
    elif os_name == "windows":
        content = startup_cmd(command)
    else:
        raise ValueError(f"unknown OS {os_name!r}")
    return Entry(path_for(os_name, home), content)


def is_enabled(home: Path | None = None) -> bool:
    return path_for(current_os(), home).exists()


def enable(home: Path | None = None, log_dir: Path | None = None) -> Path:
    entry = entry_for(current_os(), home, log_dir=log_dir)
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.path.with_name(entry.path.name + ".tmp")
    tmp.write_bytes(entry.content)
    os.replace(tmp, entry.path)
    return entry.path


def disable(home: Path | None = None) -> bool:
    """Remove the entry; False when there was none."""
    path = path_for(current_os(), home)
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def describe_command(command: list[str]) -> str:
    return shlex.join(command)
