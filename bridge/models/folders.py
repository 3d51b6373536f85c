"""Diffusers model folders in the models folder: pulled from a Hub repository, imported
from a local folder, hashed and verified.

A folder is built in a hidden staging folder next to its final place
(`.<name>.download`, `.<name>.import`) and renamed into place only when every file is
there and checked, so a half-made model never appears under its real name.

Pull (`pull_from_hub`): the repository's commit is resolved (registry entries pin one),
its listing read, model_index.json fetched first, then the files `hub.select_files`
chooses, one after another through `download.download` (resume with Range, retries,
cancellation between chunks), each checked against the sha256 (LFS files) or git blob
id (small files) the Hub lists. Progress is reported as bytes over all chosen files.

What is left when a pull stops:
  - cancelled, a checksum mismatch, an unusable repository, any refusal: nothing (the
    staging folder is deleted);
  - a network failure (a dropped connection after the retries, a 5xx): the staging
    folder, so the next pull resumes where this one stopped; staged files are re-hashed
    before they are trusted, and files no longer chosen are deleted.

The returned record (for the manager's manifest) lists every file with its sha256 and
size; `verify_folder` re-hashes against it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.errors import Cancelled, InvalidInput
from bridge.models import download as dl
from bridge.models import hub
from bridge.private_dirs import make_dir

ProgressFn = Callable[[int, int | None], None]


def staging_dirs(models_dir: Path, name: str) -> list[Path]:
    return [models_dir / f".{name}.download", models_dir / f".{name}.import"]


def staged_bytes(models_dir: Path, name: str) -> int:
    """Bytes an interrupted pull left to resume from (0 when none)."""
    folder = staging_dirs(models_dir, name)[0]
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def delete_path(path: Path) -> None:
    """Remove a file or a folder; nothing to do if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def discard_staging(models_dir: Path, name: str) -> None:
    for folder in staging_dirs(models_dir, name):
        delete_path(folder)


def hash_file(path: Path) -> tuple[str, int]:
    sha, n = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(dl.CHUNK):
            sha.update(chunk)
            n += len(chunk)
    return sha.hexdigest(), n


def tree_digest(files: dict[str, dict[str, Any]]) -> str:
    """One sha256 standing for a whole folder: over its files' paths, sizes and sha256s."""
    sha = hashlib.sha256()
    for path in sorted(files):
        sha.update(f"{path}\0{files[path]['size']}\0{files[path]['sha256']}\n".encode())
    return sha.hexdigest()


def hash_tree(folder: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            sha, size = hash_file(p)
            files[p.relative_to(folder).as_posix()] = {"sha256": sha, "size": size}
    return files


def sizes_match(folder: Path, files: dict[str, Any]) -> bool:
    """The cheap check: every recorded file is there with its recorded size."""
    for rel, info in files.items():
        try:
            if (folder / rel).stat().st_size != info.get("size"):
                return False
        except (OSError, AttributeError):
            return False
    return True


def verify_folder(folder: Path, files: dict[str, Any]) -> list[str]:
    """The recorded files that are missing or whose bytes changed (empty when all match)."""
    bad = []
    for rel, info in sorted(files.items()):
        path = folder / rel
        if not path.is_file() or hash_file(path)[0] != info.get("sha256"):
            bad.append(rel)
    return bad


def install(staging: Path, dest: Path) -> None:
    """Rename the finished staging folder onto dest, replacing what was there."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.replaced")
        delete_path(old)
        os.replace(dest, old)
    try:
        os.replace(staging, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        delete_path(old)


def _resumable(error: BaseException) -> bool:
    """A network failure whose staged bytes are worth keeping for the next pull."""
    if not isinstance(error, dl.DownloadError) or isinstance(
            error, dl.ChecksumMismatch | dl.DownloadRefused):
        return False
    status = error.details.get("http_status") or getattr(error.__cause__, "code", None)
    return not (isinstance(status, int) and status < 500 and status not in (408, 429))


def _staged_sha256(path: Path, f: hub.RepoFile) -> str | None:
    """The sha256 of a file an earlier attempt finished, if it is the listed file."""
    if not path.is_file() or path.stat().st_size != f.size:
        return None
    if f.git_oid is not None and dl.git_blob_oid(path) != f.git_oid:
        return None
    sha = hash_file(path)[0]
    return sha if f.sha256 in (None, sha) else None


def _prune(staging: Path, keep: set[str]) -> None:
    """Delete staged files a new listing no longer chooses (and their partial downloads)."""
    for p in sorted(staging.rglob("*"), reverse=True):
        rel = p.relative_to(staging).as_posix()
        for suffix in (".part.json", ".part"):
            if rel.endswith(suffix):
                rel = rel[: -len(suffix)]
                break
        if p.is_file() and rel not in keep:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()


def pull_from_hub(entry: Any, models_dir: Path, *, progress: ProgressFn | None = None,
                  cancel: dl.CancelLike | None = None, retries: int = 3,
                  backoff_s: float = 1.0) -> tuple[Path, dict[str, Any]]:
    """Download a registry entry's Hub repository as a diffusers folder; see the docstring."""
    endpoint = hub.endpoint_of(entry.hub_endpoint)
    repo: str = entry.hub_repo
    dest = models_dir / entry.filename
    staging = staging_dirs(models_dir, entry.filename)[0]
    make_dir(staging)

    def fetch(f: hub.RepoFile, on_bytes: ProgressFn | None) -> str:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("download cancelled")
        target = staging / f.path
        staged = _staged_sha256(target, f)
        if staged is not None:
            if on_bytes is not None:
                on_bytes(f.size, f.size)
            return staged
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        got = dl.download(hub.file_url(endpoint, repo, commit, f.path), target,
                          sha256=f.sha256, git_oid=f.git_oid, expected_size=f.size,
                          progress=on_bytes, cancel=cancel, retries=retries,
                          backoff_s=backoff_s)
        return got.sha256

    try:
        commit = hub.resolve_commit(endpoint, repo, entry.hub_revision)
        listing = hub.list_files(endpoint, repo, commit)
        index = next((f for f in listing if f.path == hub.MODEL_INDEX), None)
        if index is None:
            raise hub.HubError(f"{repo}@{commit} has no {hub.MODEL_INDEX}: not a diffusers "
                               "pipeline", model=entry.id)
        fetch(index, None)
        try:
            model_index = json.loads((staging / hub.MODEL_INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise hub.HubError(f"{repo}: unreadable {hub.MODEL_INDEX}: {e}") from e
        if not isinstance(model_index, dict):
            raise hub.HubError(f"{repo}: {hub.MODEL_INDEX} is not a JSON object")
        chosen, variants = hub.select_files(listing, model_index, entry.hub_variant)
        _prune(staging, {f.path for f in chosen})
        total = sum(f.size for f in chosen)
        need = total - staged_bytes(models_dir, entry.filename)
        free = shutil.disk_usage(models_dir).free
        if need > free:
            raise dl.DownloadRefused(f"not enough disk space for {entry.id}: need {need} "
                                     f"more bytes, {free} free in {models_dir}", model=entry.id)
        done = 0
        if progress is not None:
            progress(0, total)
        files: dict[str, dict[str, Any]] = {}
        for f in chosen:
            base = done

            def on_bytes(received: int, _total: int | None, base: int = base) -> None:
                if progress is not None:
                    progress(base + received, total)

            files[f.path] = {"sha256": fetch(f, on_bytes), "size": f.size}
            done += f.size
        if cancel is not None and cancel.cancelled:
            raise Cancelled("download cancelled")
        for p in staging.rglob("*"):  # stray partial-download bookkeeping
            if p.is_file() and p.relative_to(staging).as_posix() not in files:
                p.unlink()
        install(staging, dest)
    except BaseException as e:
        if not _resumable(e) or not staged_bytes(models_dir, entry.filename):
            delete_path(staging)
        raise
    record = {
        "file": dest.name, "format": "diffusers", "files": files, "sha256": tree_digest(files),
        "size": total, "source": "download", "hub_repo": repo, "revision": commit,
        "requested_revision": entry.hub_revision, "endpoint": endpoint, "variants": variants,
        "url": f"{endpoint}/{repo}/tree/{commit}", "official": True,
    }
    return dest, record


# -- local folders ---------------------------------------------------------------------------
def pipeline_architecture(folder: Path) -> str:
    """'StableDiffusion' or 'StableDiffusionXL' from a folder's model_index.json."""
    try:
        data = json.loads((folder / hub.MODEL_INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{folder} is not a diffusers model folder (no readable "
                           f"{hub.MODEL_INDEX})") from e
    name = str(data.get("_class_name", "")) if isinstance(data, dict) else ""
    if "StableDiffusion" not in name:
        raise InvalidInput(f"{folder} holds a {name or 'unknown'} pipeline; the bridge fills "
                           "with Stable Diffusion 1.x or SDXL pipelines")
    return "StableDiffusionXL" if "XL" in name or "text_encoder_2" in data else "StableDiffusion"


def import_folder(source: Path, models_dir: Path, name: str,
                  variant: str | None) -> tuple[Path, dict[str, Any]]:
    """Copy what a pipeline needs from a local diffusers folder (a saved pipeline, a Hugging
    Face cache snapshot) into the models folder; pickled weights are refused as in a pull."""
    model_index = json.loads((source / hub.MODEL_INDEX).read_text(encoding="utf-8"))
    listing = []
    for p in sorted(source.rglob("*")):
        rel = p.relative_to(source).as_posix()
        if p.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            listing.append(hub.RepoFile(rel, p.stat().st_size))
    try:
        chosen, variants = hub.select_files(listing, model_index, variant)
    except hub.HubError as e:
        raise InvalidInput(f"{source}: {e.message}") from e
    dest = models_dir / name
    staging = staging_dirs(models_dir, name)[1]
    delete_path(staging)
    try:
        files = {}
        for f in chosen:
            target = staging / f.path
            make_dir(target.parent)
            shutil.copyfile(source / f.path, target)
            sha, size = hash_file(target)
            files[f.path] = {"sha256": sha, "size": size}
        install(staging, dest)
    except BaseException:
        delete_path(staging)
        raise
    record = {"file": dest.name, "format": "diffusers", "files": files,
              "sha256": tree_digest(files), "size": sum(f["size"] for f in files.values()),
              "source": "import", "imported_from": str(source.resolve()),
              "variants": variants, "official": False}
    return dest, record
