"""The bridge's own folders are owner-only (0700), whatever the umask.

The config, cache, log and models folders hold the token, PSD uploads and results
while their jobs live, reference images, reports and a log naming the user's files.
Under the usual umask (022) `mkdir` makes them readable by every local user, so:

- `make_dir(path)` creates a folder, and each missing folder above it, as 0700;
  a folder that is already there is left as it is;
- `secure_folders(settings)`, at server start-up, tightens to 0700 the bridge's own
  folders that an older version (or another umask) left open to group or others.
  A folder the user chose (`--models-dir`, `RB_*_DIR`, `config.toml`) that already
  existed is theirs: it is never changed, only warned about.

Only POSIX file modes: on Windows these are no-ops (the profile's ACLs apply).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config import Settings

log = logging.getLogger("bridge.folders")

OWNER_ONLY = 0o700
# Folders the bridge names and fills inside its cache folder.
CACHE_SUBFOLDERS = ("jobs", "job-owners", "references", "reports")


def _posix() -> bool:
    return os.name == "posix"


def make_dir(path: Path) -> Path:
    """`path` and any missing folder above it, each created owner-only (like mkdir -p)."""
    path = Path(path)
    missing = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, OWNER_ONLY)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by another thread or process in the meantime
        if _posix():
            # mkdir's mode is masked by the umask: a umask like 0o200 would give 0500.
            os.chmod(folder, OWNER_ONLY)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def make_private_file(path: Path) -> Path:
    """Create `path` empty and owner-only (0600) if missing; an existing file of ours that
    others can read is made 0600. For the log: rotation renames it, keeping the mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    if _posix():
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, 0o600)
    return path


def is_open_to_others(path: Path) -> bool:
    """True for a folder that group or other users may read, write or enter."""
    if not _posix():
        return False
    try:
        return bool(path.stat().st_mode & 0o077)
    except OSError:
        return False


def tighten(path: Path) -> bool:
    """Make one of the bridge's own existing folders 0700; True if it was changed.

    Only a folder this user owns and that is no symlink (a link could point anywhere)."""
    if not _posix() or path.is_symlink() or not path.is_dir():
        return False
    st = path.stat()
    if st.st_uid != os.getuid() or not st.st_mode & 0o077:
        return False
    try:
        os.chmod(path, OWNER_ONLY)
    except OSError as e:
        log.warning("could not make %s owner-only: %s", path, e)
        return False
    log.info("made %s owner-only (it was %o)", path, st.st_mode & 0o777)
    return True


def secure_folders(settings: Settings) -> None:
    """Tighten the bridge's own folders; warn about open folders the user chose."""
    if not _posix():
        return
    for name in ("config_dir", "cache_dir", "log_dir", "models_dir"):
        folder = Path(getattr(settings, name))
        if name in settings.chosen_dirs:
            if folder.is_dir() and is_open_to_others(folder):
                log.warning("%s (%s) can be read by other users of this machine; the bridge "
                            "leaves a folder you chose as it is: `chmod 700 %s` makes it "
                            "yours alone", folder, name.replace("_", " "), folder)
        else:
            tighten(folder)
    for sub in CACHE_SUBFOLDERS:  # named by the bridge wherever the cache folder is
        tighten(Path(settings.cache_dir) / sub)
