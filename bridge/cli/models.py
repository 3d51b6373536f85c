"""`retouch-bridge models list | pull ID | verify [ID] | import PATH [--as ID] | rm ID`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bridge.errors import InvalidInput, ModelMissing


def _manager() -> Any:
    from bridge.models.manager import default_manager

    return default_manager()


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def cmd_list(args: argparse.Namespace) -> int:
    states = _manager().states()
    if args.task:
        states = [s for s in states if s["task"] == args.task]
    if args.json:
        print(json.dumps(states, indent=2))
        return 0
    rows = [("ID", "TASK", "ARCH", "SCALE", "STATE", "SIZE", "LICENSE")]
    for s in states:
        lic = s["license"] + (" (non-commercial)" if s["non_commercial"] else "")
        state = s["state"] + ("*" if s["state"] == "installed" and s["official"] is False else "")
        rows.append((s["id"], s["task"], s["architecture"], f"x{s['scale']}", state,
                     _size(s["size"]), lic))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if any(s["state"] == "installed" and s["official"] is False for s in states):
        print("* user-supplied file (imported, not the official release bytes)")
    return 0


class _Progress:
    """A one-line progress display on stderr (a line per 10% when not a terminal)."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.tty = sys.stderr.isatty()
        self.last_step = -1
        self.last_draw = 0.0

    def __call__(self, received: int, total: int | None) -> None:
        if total:
            pct = 100 * received / total
            text = f"{self.model_id}: {pct:5.1f}% ({_size(received)} of {_size(total)})"
            step = int(pct // 10)
        else:
            text, step = f"{self.model_id}: {_size(received)}", received >> 26
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw > 0.1 or (total and received >= total):
                print(f"\r{text}", end="", file=sys.stderr, flush=True)
                self.last_draw = now
        elif step != self.last_step:
            print(text, file=sys.stderr, flush=True)
        self.last_step = step

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def cmd_pull(args: argparse.Namespace) -> int:
    manager = _manager()
    entry = manager.entry(args.id)
    if manager.is_installed(entry.id) and not args.force:
        try:  # require() hashes a file changed on disk: a damaged one is pulled again
            print(f"{entry.id} is already installed: {manager.require(entry.id)}")
            return 0
        except ModelMissing:
            print(f"note: {entry.id} changed on disk since it was installed; downloading it "
                  "again", file=sys.stderr)
    if entry.non_commercial:
        print(f"note: {entry.id} is licensed {entry.license}: non-commercial use only",
              file=sys.stderr)
    progress = _Progress(entry.id)
    try:
        path = manager.pull(entry.id, progress=progress, force=args.force)
    finally:
        progress.done()
    print(f"installed {entry.id}: {path}")
    if not entry.has_official_checksum:
        print(f"warning: {entry.id} has no published checksum; recorded this download's "
              "sha256 to detect later changes", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    manager = _manager()
    ids = [args.id] if args.id else [s["id"] for s in manager.states()
                                     if s["state"] in ("installed", "corrupt")]
    if not ids:
        print("no models installed")
        return 0
    failed = 0
    for model_id in ids:
        if manager.verify(model_id):
            state = manager.state(model_id)
            origin = "official release" if state["official"] else "user-supplied"
            print(f"ok      {model_id}  ({origin}, sha256 {state['sha256']})")
        else:
            failed += 1
            print(f"FAILED  {model_id}: the file is not what was installed; run "
                  f"`retouch-bridge models pull {model_id}` or import it again")
    return 1 if failed else 0


def cmd_import(args: argparse.Namespace) -> int:
    manager = _manager()
    source = Path(args.path)
    if not source.exists():
        raise InvalidInput(f"no such file or folder: {source}")
    path = manager.import_file(source, as_id=args.as_id)
    model_id = next(s["id"] for s in manager.states() if s["path"] == str(path))
    state = manager.state(model_id)
    print(f"imported {source} as {model_id}: {path}")
    if not state["official"]:
        print(f"note: not the official release file (sha256 {state['sha256']}); recorded as "
              "user-supplied and verified against this hash from now on", file=sys.stderr)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    _manager().remove(args.id)
    print(f"removed {args.id}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list, download, verify, import, remove models")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="registry models and whether they are installed")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--task", help="only models of this task (upscale, restore-faces, ...)")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("pull", help="download a model (resumes, verifies its checksum)")
    p.add_argument("id")
    p.add_argument("--force", action="store_true", help="download again even if installed")
    p.set_defaults(handler=cmd_pull)

    p = sub.add_parser("verify", help="check installed files against their sha256")
    p.add_argument("id", nargs="?")
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("import", help="install a model file (or diffusers folder) you already have")
    p.add_argument("path")
    p.add_argument("--as", dest="as_id", metavar="ID",
                   help="registry id it is (default: recognised by checksum or file name)")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser("rm", help="delete an installed model")
    p.add_argument("id")
    p.set_defaults(handler=cmd_rm)
