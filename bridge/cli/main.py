"""`retouch-bridge`: discovers command modules in this package and dispatches to them."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import bridge
import bridge.cli
from bridge.errors import BridgeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retouch-bridge",
        description="Local AI companion for Photoshop and Lightroom Classic.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {bridge.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(bridge.cli.__path__), key=lambda m: m.name):
        if info.name in ("main",) or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bridge.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BridgeError as e:
        print(f"retouch-bridge: error: {e.message}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"retouch-bridge: error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        # One clear line for users; the traceback when asked for (RB_DEBUG=1).
        if os.environ.get("RB_DEBUG"):
            raise
        print(f"retouch-bridge: error: {type(e).__name__}: {e} (RB_DEBUG=1 shows details)",
              file=sys.stderr)
        return 1
