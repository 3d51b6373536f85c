"""The dashboard window in a process of its own (macOS, where the tray owns the main thread).

Started by the tray app as `python -m bridge.tray.window`; reads the dashboard URL (it
holds the pairing token) as the first line on stdin, then `show` lines to come to the
front. End of input (the tray quit) closes the window.
"""

from __future__ import annotations

import sys
import threading


def main() -> int:
    import webview

    from bridge.tray.app import TITLE, WINDOW_MIN, WINDOW_SIZE

    url = sys.stdin.readline().strip()
    if not url:
        return 2
    window = webview.create_window(TITLE, url, width=WINDOW_SIZE[0], height=WINDOW_SIZE[1],
                                   min_size=WINDOW_MIN, background_color="#0f1113")

    def follow_parent() -> None:
        for line in sys.stdin:
            if line.strip() == "show":
                window.show()
                window.restore()
        window.destroy()

    threading.Thread(target=follow_parent, name="tray-window-stdin", daemon=True).start()
    webview.start(private_mode=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
