"""Which GUI toolkits this machine offers: the tray icon's pystray backend and the
dashboard window's pywebview GUI, chosen before either library is imported.

pystray tries AppIndicator first on Linux and fails with ValueError (not ImportError)
when PyGObject lacks it, so it is told which backend to use instead of guessing.
"""

from __future__ import annotations

import os
import shutil
import sys


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _gi_has(namespace: str, *versions: str) -> bool:
    try:
        import gi
    except ImportError:
        return False
    for version in versions:
        try:
            gi.require_version(namespace, version)
            return True
        except ValueError:
            continue
    return False


def _session_bus() -> bool:
    # pystray's GTK and AppIndicator backends talk D-Bus (notifications, the indicator).
    return bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS")) or shutil.which("dbus-launch") is not None


def pystray_backend() -> str | None:
    """The pystray backend for this machine (None: pystray's own choice, macOS/Windows)."""
    if os.environ.get("PYSTRAY_BACKEND"):
        return os.environ["PYSTRAY_BACKEND"]
    if sys.platform in ("darwin", "win32"):
        return None
    if _session_bus() and _gi_has("Gtk", "3.0"):
        if _gi_has("AyatanaAppIndicator3", "0.1") or _gi_has("AppIndicator3", "0.1"):
            return "appindicator"
        return "gtk"
    return "xorg"


def select_pystray_backend() -> str | None:
    backend = pystray_backend()
    if backend:
        os.environ["PYSTRAY_BACKEND"] = backend
    return backend


def webview_gui() -> str | None:
    """pywebview's GUI here: 'gtk' or 'qt' on Linux, 'native' on macOS/Windows, None: none."""
    if sys.platform in ("darwin", "win32"):
        return "native"
    if not has_display():
        return None
    if _gi_has("Gtk", "3.0") and _gi_has("WebKit2", "4.1", "4.0"):
        return "gtk"
    try:
        import qtpy  # noqa: F401
        from qtpy import QtWebEngineWidgets  # noqa: F401

        return "qt"
    except Exception:  # ImportError, or qtpy's own error when no Qt binding exists
        return None
