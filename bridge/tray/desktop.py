"""Asking the desktop to open a folder or file, open a link, or hold text on the clipboard."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import webbrowser
from pathlib import Path

log = logging.getLogger("bridge.tray")


def open_path(path: Path) -> bool:
    """Show a folder or file with the system's default app; False when nothing could."""
    try:
        if sys.platform == "win32":
            os.startfile(str(path))  # type: ignore[attr-defined]
            return True
        opener = "open" if sys.platform == "darwin" else shutil.which("xdg-open")
        if opener is None:
            return webbrowser.open(path.as_uri())
        # Detached: the file manager outlives nothing of ours and leaves no zombie.
        subprocess.Popen([opener, str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        return True
    except OSError as e:
        log.warning("could not open %s: %s", path, e)
        return False


def open_url(url: str) -> bool:
    try:
        return webbrowser.open(url)
    except webbrowser.Error as e:
        log.warning("could not open a browser: %s", e)
        return False


def _clipboard_commands() -> list[list[str]]:
    if sys.platform == "darwin":
        return [["pbcopy"]]
    if sys.platform == "win32":
        return [["clip"]]
    out = []
    if os.environ.get("WAYLAND_DISPLAY"):
        out.append(["wl-copy"])
    out += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    return out


def copy_text(text: str) -> bool:
    """Put text on the clipboard: GTK's clipboard when GTK runs here, else the OS's tool."""
    if _copy_gtk(text):
        return True
    for cmd in _clipboard_commands():
        if shutil.which(cmd[0]) is None:
            continue
        try:
            subprocess.run(cmd, input=text.encode("utf-8"), check=True, timeout=5,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return True
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("%s failed: %s", cmd[0], e)
    return False


def _copy_gtk(text: str) -> bool:
    gtk = sys.modules.get("gi.repository.Gtk")
    if gtk is None:
        return False
    import threading

    from gi.repository import Gdk, GLib

    done = threading.Event()

    def put() -> bool:
        clip = gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD)
        clip.set_text(text, -1)
        clip.store()  # keep it after we exit, where a clipboard manager runs
        done.set()
        return False

    if threading.current_thread() is threading.main_thread():
        put()
    else:
        GLib.idle_add(put)
        done.wait(5)
    return done.is_set()
