"""Files around a PSD job: atomic writes and backups."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(dst: Path, write: Callable[[BinaryIO], None], *,
                 mode_from: Path | None = None,
                 before_replace: Callable[[], None] | None = None) -> None:
    """Write through a temporary file in dst's folder, then rename over dst.

    Readers see the old file or the new one, never half of either; on any
    failure (cancellation included) the temporary file is removed and dst is
    untouched. `before_replace` runs once the new bytes are safely on disk.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with open(tmp, "wb") as f:  # by name: some writers (tifffile) want f.name
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; give it what the input had, or a normal file's mode.
        mode = stat.S_IMODE(mode_from.stat().st_mode) if mode_from else _default_mode()
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def backup_path(path: Path) -> Path:
    """NAME.psd.bak, or NAME.psd.bak.2, .3 ...: an earlier backup is never overwritten."""
    candidate = path.with_name(path.name + ".bak")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak.{n}")
        n += 1
    return candidate


def make_backup(path: Path) -> Path:
    """Keep the current file under a backup name (a hard link when the disk allows)."""
    target = backup_path(path)
    try:
        os.link(path, target)  # instant, and the rename that follows leaves it intact
    except OSError:
        shutil.copy2(path, target)
    return target
