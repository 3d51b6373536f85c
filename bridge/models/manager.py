"""The model manager: which models are installed, getting them, and loading them.

One `ModelManager` per process (`default_manager()`); the server, the CLI and every
operation share it through `OpContext.models`. It is cheap to create and never imports
torch until `load()`.

Files live in `Settings.models_dir`, one file per model, next to `manifest.json` which
records for each installed model: its file, sha256, size, where it came from
("download" or "import"), whether its bytes are the official release's
(`official`), and for models the registry does not list, their custom entry.

Diffusers models (`format: diffusers` with a `hub_repo`: sd15-inpainting,
sdxl-inpainting) are folders instead: `pull` downloads the files their pipeline needs
from the Hugging Face repository at the registry's pinned commit (fp16 safetensors
where the repository has them; never pickles), each checked against the Hub's sha256,
into a staging folder renamed into place when complete (bridge/models/folders.py).
Their record lists every file's sha256 and size (`files`); `sha256` is a digest over
that list, `revision` the commit. `import_file` also takes a local diffusers folder
(copying only what the pipeline needs), or a single .safetensors/.ckpt checkpoint.

States (`state(id)["state"]`):
  missing      no file (a `.part`, or a staging folder, from an interrupted pull may
               exist: `partial` bytes)
  downloading  a pull is running in this process (`received`, `total`)
  installed    the file is present (cheap check: exists, size as recorded; for a folder,
               every recorded file)
  corrupt      a size changed or a file went, or `verify` (or the check before use, below)
               found a different hash; pull or import again

Before use (`require`, which every load goes through) a file whose size or mtime is not
the one recorded when its bytes were last checked (`checked`; for a folder, each file's
`mtime_ns`) is hashed again and compared with its recorded sha256: a file edited or
damaged since is marked corrupt and refused with the way to get it again, instead of
being loaded. An unchanged file costs one stat (bridge/models/integrity.py).

Checksums: a download must match the registry's sha256 (or md5, where only that is
known); with neither, the first download's sha256 is recorded and a warning logged
(trust on first download). A folder's files must match the sha256 (or git blob id)
the Hub lists for them at the pinned commit. An *import* may differ from the official
hash (converted or re-zipped files): it is recorded as user-supplied with its own hash,
`official` false, and `verify` then checks the file against that recorded hash.
Imports are checked to hold the registry's architecture and scale (for diffusers
models: SD 1.x or SDXL), so a wrong file cannot pose as a model. A file the registry
does not know is imported as a custom model whose task follows from what spandrel
detects (SR -> upscale, restoration -> denoise, face -> restore-faces); a diffusers
folder it does not know becomes a custom fill model.

RB_MODEL_REGISTRY names a registry file to use instead of the built-in one (an
internal mirror with the same ids and checksums, or tests).

Offline mode (Settings.offline, RB_OFFLINE=1) makes `pull` fail before any network
access; `require` never downloads: it raises `ModelMissing` naming both ways to get
the model (`models pull ID`, `models import PATH --as ID`).

API used by the server and operations:
    entries() -> list[ModelEntry]          states() -> list[dict]   state(id) -> dict
    pull(id, progress=None, cancel=None) -> Path      verify(id) -> bool
    import_file(path, as_id=None) -> Path (a file or a diffusers folder)  remove(id)
    require(id) -> Path                    load(id, denoise=None) -> LoadedModel
    installed(task=None) -> list[ModelEntry]          entry(id) -> ModelEntry
    is_installed(id) (stat only)                       is_usable(id) (bytes checked too)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.config import Settings, load_settings
from bridge.errors import InvalidInput, InvalidParams, ModelError, ModelMissing, NotFound
from bridge.models import download as dl
from bridge.models import folders, integrity
from bridge.models.registry import ID_PATTERN, ModelEntry, Registry, builtin_registry
from bridge.private_dirs import make_dir

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]
_PURPOSE_TASK = {"SR": "upscale", "Restoration": "denoise", "FaceSR": "restore-faces",
                 "Inpainting": "inpaint"}


def _megabytes(size: int) -> str:
    mb = size / 1e6
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.2g} MB"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _hash_file(path: Path) -> tuple[str, str, int]:
    sha, md5, n = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            n += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), n


def _stamp_folder(folder: Path, files: dict[str, dict[str, Any]]) -> None:
    """Record each checked file's mtime (its size is recorded already) in place."""
    for rel, info in files.items():
        with contextlib.suppress(OSError):
            info["mtime_ns"] = integrity.stat_of(folder / rel)["mtime_ns"]


def registry_from_env() -> Registry | None:
    """RB_MODEL_REGISTRY: a registry file used instead of the built-in one (mirrors)."""
    path = os.environ.get("RB_MODEL_REGISTRY")
    if not path:
        return None
    try:
        return Registry.from_file(Path(path).expanduser())
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"RB_MODEL_REGISTRY={path} is not a usable registry file: {e}") from e


def _entry_named(registry: Registry, as_id: str) -> ModelEntry | None:
    """The registry's entry for an id given with `--as`; None for a new custom id, which
    must be a plain id (it becomes a file name)."""
    entry = registry.get(as_id)
    if entry is None and not ID_PATTERN.fullmatch(as_id):
        raise InvalidInput(f"invalid model id {as_id!r}: use letters, digits, . _ + -")
    return entry


class ModelManager:
    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.models_dir = Path(settings.models_dir)
        self._builtin = registry or registry_from_env() or builtin_registry()
        self._lock = threading.RLock()
        self._pull_locks: dict[str, threading.Lock] = {}
        self._active: dict[str, dict[str, Any]] = {}
        self._cache: Any = None
        self._device: Any = None
        # Download retries after a dropped connection, and the pause before each.
        self.download_retries = 3
        self.retry_backoff_s = 1.0

    # -- registry ---------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.models_dir / "manifest.json"

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable %s: %s", self.manifest_path, e)
            return {}
        models = data.get("models") if isinstance(data, dict) else None
        return models if isinstance(models, dict) else {}

    def _update_manifest(self, model_id: str, record: dict[str, Any] | None) -> None:
        with self._lock:
            models = self._read_manifest()
            if record is None:
                models.pop(model_id, None)
            else:
                models[model_id] = record
            make_dir(self.models_dir)
            fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=self.models_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "models": models}, f, indent=2, sort_keys=True)
            os.replace(tmp, self.manifest_path)

    @property
    def registry(self) -> Registry:
        custom = []
        for model_id, rec in self._read_manifest().items():
            if isinstance(rec.get("entry"), dict) and model_id not in self._builtin:
                with contextlib.suppress(TypeError, ValueError):
                    custom.append(ModelEntry.from_json(rec["entry"], custom=True))
        return self._builtin.with_entries(custom) if custom else self._builtin

    def entries(self) -> list[ModelEntry]:
        return list(self.registry)

    def entry(self, model_id: str) -> ModelEntry:
        found = self.registry.get(model_id)
        if found is None:
            known = ", ".join(e.id for e in self.registry)
            raise NotFound(f"unknown model '{model_id}'; known models: {known}", model=model_id)
        return found

    # -- state ------------------------------------------------------------------------
    def _path_of(self, entry: ModelEntry, rec: dict[str, Any] | None) -> Path:
        name = rec.get("file") if rec else None
        if not isinstance(name, str) or not name or "/" in name or "\\" in name \
                or name.startswith("."):
            name = entry.filename
        return self.models_dir / name

    def _file_state(self, entry: ModelEntry, rec: dict[str, Any] | None) -> tuple[str, Path]:
        path = self._path_of(entry, rec)
        if entry.loader == "diffusers" and path.is_dir():  # a diffusers model is a folder
            if rec is not None and isinstance(rec.get("files"), dict):
                ok = not rec.get("corrupt") and folders.sizes_match(path, rec["files"])
                return ("installed" if ok else "corrupt"), path
            return ("installed" if (path / "model_index.json").is_file() else "missing"), path
        if not path.is_file():
            return "missing", path
        if rec is not None and (rec.get("corrupt") or (
                rec.get("size") is not None and path.stat().st_size != rec["size"])):
            return "corrupt", path
        return "installed", path

    def state(self, model_id: str) -> dict[str, Any]:
        entry = self.entry(model_id)
        return self._state(entry, self._read_manifest().get(entry.id))

    def states(self) -> list[dict[str, Any]]:
        manifest = self._read_manifest()
        return [self._state(e, manifest.get(e.id)) for e in self.registry]

    def _state(self, entry: ModelEntry, rec: dict[str, Any] | None) -> dict[str, Any]:
        state, path = self._file_state(entry, rec)
        active = self._active.get(entry.id)
        out: dict[str, Any] = {
            "id": entry.id,
            "title": entry.title,
            "task": entry.task,
            "architecture": entry.architecture,
            "scale": entry.scale,
            "state": "downloading" if active else state,
            "size": (rec or {}).get("size") or entry.size,
            "path": str(path) if state != "missing" else None,
            "license": entry.license,
            "non_commercial": entry.non_commercial,
            "default_for": list(entry.default_for),
            "url": entry.url,
            "sha256": (rec or {}).get("sha256") or entry.sha256,
            "source": (rec or {}).get("source"),
            "official": (rec or {}).get("official"),
            "custom": entry.custom,
            "description": entry.description,
        }
        if active:
            out["received"], out["total"] = active["received"], active["total"]
        elif state == "missing":
            partial = self._partial(entry)
            if partial:
                out["partial"] = partial
        if rec is not None and rec.get("revision"):
            out["revision"] = rec["revision"]
        return out

    def _partial(self, entry: ModelEntry) -> int:
        """Bytes an interrupted pull left for the next one to resume from."""
        if entry.hub_repo is not None and entry.url is None:
            return folders.staged_bytes(self.models_dir, entry.filename)
        return dl.partial_size(self.models_dir / entry.filename)

    def installed(self, task: str | None = None) -> list[ModelEntry]:
        """Usable models (installed, not corrupt), best first within the order given."""
        manifest = self._read_manifest()
        found = []
        for e in self.registry:
            if task is not None and e.task != task:
                continue
            if self._file_state(e, manifest.get(e.id))[0] == "installed":
                found.append(e)
        return sorted(found, key=lambda e: -e.priority)

    def installed_for(self, task: str, kind: str) -> list[ModelEntry]:
        """Installed models of a task, best first; ModelMissing naming the task's default
        model and how to get it when there are none. `kind` names them for people
        ("denoising model")."""
        found = self.installed(task)
        if found:
            return found
        default = next((e for e in self.registry if e.task == task and task in e.default_for),
                       None)
        hint = self._missing_hint(default) if default is not None else ""
        raise ModelMissing(f"this needs a {kind} and none is installed"
                           + (f": {hint}" if hint else ""),
                           model=default.id if default else None, hint=hint)

    def task_entry(self, model_id: str, task: str, kind: str, extra: tuple[str, ...] = ()) -> ModelEntry:
        """The named model, which must be of this task (InvalidParams listing the choices,
        `extra` first) and installed (ModelMissing)."""
        try:
            entry = self.entry(model_id)
        except NotFound:
            entry = None
        if entry is None or entry.task != task:
            known = ", ".join([*extra, *(e.id for e in self.registry if e.task == task)])
            raise InvalidParams(f"'{model_id}' is not a {kind}; use one of: {known}",
                                param="model") from None
        self.require(entry.id)
        return entry

    def is_installed(self, model_id: str) -> bool:
        entry = self.entry(model_id)
        return self._file_state(entry, self._read_manifest().get(entry.id))[0] == "installed"

    def is_usable(self, model_id: str) -> bool:
        """Installed, and its bytes checked as `require` does (hashing only what changed)."""
        try:
            self.require(model_id)
        except ModelMissing:
            return False
        return True

    # -- getting models -----------------------------------------------------------------
    def _missing_hint(self, entry: ModelEntry) -> str:
        size = f" ({_megabytes(entry.size)})" if entry.size else ""
        pull = (f"run `retouch-bridge models pull {entry.id}` to download it{size}"
                if entry.downloadable else "it has no download address")
        return (f"{pull}, or, with the file at hand, "
                f"`retouch-bridge models import PATH --as {entry.id}`")

    def pull(self, model_id: str, progress: ProgressFn | None = None,
             cancel: Any = None, force: bool = False) -> Path:
        entry = self.entry(model_id)
        if self.settings.offline:
            raise ModelMissing(
                f"offline mode (RB_OFFLINE) is on: not downloading model '{entry.id}'. "
                f"Turn offline mode off and run `retouch-bridge models pull {entry.id}`, or "
                f"copy the file here with `retouch-bridge models import PATH --as {entry.id}`",
                model=entry.id, hint=self._missing_hint(entry), offline=True)
        if not entry.downloadable:
            raise ModelMissing(f"model '{entry.id}' has no download address; "
                               "import it with "
                               f"`retouch-bridge models import PATH --as {entry.id}`",
                               model=entry.id, hint=self._missing_hint(entry))
        with self._lock:
            lock = self._pull_locks.setdefault(entry.id, threading.Lock())
        with lock:
            manifest = self._read_manifest()
            rec = manifest.get(entry.id)
            state, path = self._file_state(entry, rec)
            if state == "installed" and not force and not self._damaged(entry, rec, path):
                return path
            self._active[entry.id] = {"received": 0, "total": entry.size}

            def on_progress(received: int, total: int | None) -> None:
                self._active[entry.id] = {"received": received, "total": total}
                if progress is not None:
                    progress(received, total)

            try:
                if entry.url is None:
                    dest, record = folders.pull_from_hub(
                        entry, self.models_dir, progress=on_progress, cancel=cancel,
                        retries=self.download_retries, backoff_s=self.retry_backoff_s)
                    got = None
                else:
                    dest = self.models_dir / entry.filename
                    got = dl.download(entry.url, dest, sha256=entry.sha256, md5=entry.md5,
                                      expected_size=entry.size, progress=on_progress,
                                      cancel=cancel, retries=self.download_retries,
                                      backoff_s=self.retry_backoff_s)
            finally:
                self._active.pop(entry.id, None)
            if path != dest and state != "missing":
                folders.delete_path(path)  # the file or folder this pull replaces
            integrity.forget(dest)
            if got is None:
                _stamp_folder(dest, record["files"])
                self._update_manifest(entry.id, {**record, "installed_at": _now()})
                self._forget_loaded(entry.id)
                return dest
            if not entry.has_official_checksum:
                log.warning("model %s has no official checksum; recorded sha256 %s of the "
                            "first download (trust on first download)", entry.id, got.sha256)
            self._update_manifest(entry.id, {
                "file": dest.name, "sha256": got.sha256, "md5": got.md5, "size": got.size,
                "source": "download", "url": entry.url, "installed_at": _now(),
                "official": entry.has_official_checksum, "checked": integrity.stat_of(dest),
            })
            self._forget_loaded(entry.id)
            return dest

    def verify(self, model_id: str) -> bool:
        """Hash the file; True if it is what was installed (recorded or official hash)."""
        entry = self.entry(model_id)
        rec = self._read_manifest().get(entry.id)
        state, path = self._file_state(entry, rec)
        if state == "missing":
            raise ModelMissing(f"model '{entry.id}' is not installed",
                               model=entry.id, hint=self._missing_hint(entry))
        if path.is_dir():
            return self._verify_folder(entry, rec, path)
        before = integrity.stat_of(path)
        sha, md5, size = _hash_file(path)
        official = (entry.sha256 == sha) if entry.sha256 else (
            entry.md5 == md5 if entry.md5 else None)
        # An import is checked against its own recorded hash, others against the release's.
        ok = rec["sha256"] == sha if rec is not None and rec.get("sha256") else bool(official)
        new = dict(rec or {"file": path.name, "source": "unknown", "installed_at": _now()})
        new.update({"verified_at": _now(), "corrupt": not ok})
        new.pop("checked", None)
        if ok:
            new.update({"sha256": sha, "md5": md5, "size": size})
            if integrity.stat_of(path) == before:  # not written to while it was read
                new["checked"] = before
            if official is not None:
                new["official"] = bool(official)
        self._update_manifest(entry.id, new)
        if not ok:
            self._forget_loaded(entry.id)
        return ok

    def _verify_folder(self, entry: ModelEntry, rec: dict[str, Any] | None, path: Path) -> bool:
        """Re-hash a folder model's files against the sha256s recorded when it was installed."""
        files = rec.get("files") if rec is not None else None
        if not isinstance(files, dict):
            # A folder put here by hand: from now on its present hashes are the reference.
            files = folders.hash_tree(path)
            _stamp_folder(path, files)
            log.warning("model %s: a folder without a record; recorded the sha256 of its %d "
                        "files", entry.id, len(files))
            new = dict(rec or {"source": "unknown", "installed_at": _now(), "official": False})
            new.update({"file": path.name, "format": "diffusers", "files": files,
                        "sha256": folders.tree_digest(files),
                        "size": sum(f["size"] for f in files.values()),
                        "verified_at": _now(), "corrupt": False})
            self._update_manifest(entry.id, new)
            return True
        bad = folders.verify_folder(path, files)
        new = {k: v for k, v in (rec or {}).items() if k != "damaged_files"}
        new.update({"verified_at": _now(), "corrupt": bool(bad)})
        if bad:
            new["damaged_files"] = bad[:20]
            log.warning("model %s: %d files changed or missing: %s", entry.id, len(bad),
                        ", ".join(bad[:5]))
            self._forget_loaded(entry.id)
        else:
            new["files"] = {rel: dict(info) for rel, info in files.items()}
            _stamp_folder(path, new["files"])
        self._update_manifest(entry.id, new)
        return not bad

    def import_file(self, path: Path, as_id: str | None = None) -> Path:
        """Install a model file, or a diffusers folder, the user already has."""
        path = Path(path).expanduser()
        if path.is_dir():
            return self._import_folder(path, as_id)
        if not path.is_file():
            raise InvalidInput(f"no such file: {path}")
        suffix = path.suffix.lower()
        sha, md5, size = _hash_file(path)
        registry = self.registry
        entry: ModelEntry | None
        if as_id is not None:
            entry = _entry_named(registry, as_id)
        else:
            entry = registry.by_checksum(sha, md5) or registry.find(path.name) or registry.find(
                path.stem)
        if entry is not None and entry.custom and as_id is None:
            entry = None  # a re-import of a custom model is identified afresh
        if entry is not None:
            if suffix not in entry.suffixes:
                raise InvalidInput(f"{path.name}: model '{entry.id}' needs a "
                                   f"{' or '.join(entry.suffixes)} file")
            official = (entry.sha256 == sha) if entry.sha256 else (
                entry.md5 == md5 if entry.md5 else False)
            self._check_content(path, entry, official)
            target_name = entry.filename if suffix == Path(entry.filename).suffix.lower() \
                else f"{entry.id}{suffix}"
            if not official:
                log.warning("imported %s as %s: its hash %s is not the official release's; "
                            "recorded as user-supplied", path.name, entry.id, sha)
            custom_json = entry.to_json() if entry.custom else None
        else:
            entry, custom_json = self._custom_entry(path, as_id, suffix)
            target_name, official = entry.filename, False
        dest = self.models_dir / target_name
        make_dir(self.models_dir)
        fd, tmp = tempfile.mkstemp(prefix=f".{target_name}-", suffix=".import", dir=self.models_dir)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            if _hash_file(Path(tmp))[0] != sha:
                raise InvalidInput(f"{path} changed while it was being copied; try again")
            os.replace(tmp, dest)
            integrity.forget(dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._drop_replaced(entry, dest)
        record: dict[str, Any] = {
            "file": dest.name, "sha256": sha, "md5": md5, "size": size, "source": "import",
            "imported_from": str(path.resolve()), "installed_at": _now(), "official": official,
            "checked": integrity.stat_of(dest),
        }
        if custom_json is not None:
            record["entry"] = custom_json
        self._update_manifest(entry.id, record)
        self._forget_loaded(entry.id)
        return dest

    def _drop_replaced(self, entry: ModelEntry, dest: Path) -> None:
        """Delete the file or folder an import under another name replaced."""
        old = self._read_manifest().get(entry.id)
        name = old.get("file") if old else None
        if isinstance(name, str) and name != dest.name:
            old_path = self._path_of(entry, old)
            if old_path.name == name:  # a safe name (never outside the models folder)
                folders.delete_path(old_path)

    def _import_folder(self, path: Path, as_id: str | None) -> Path:
        if not (path / "model_index.json").is_file():
            raise InvalidInput(f"{path} is not a diffusers model folder (no model_index.json); "
                               "import a folder saved by diffusers, or one checkpoint file")
        architecture = folders.pipeline_architecture(path)
        registry = self.registry
        entry: ModelEntry | None
        if as_id is not None:
            entry = _entry_named(registry, as_id)
        else:
            entry = self._folder_entry(registry, path)
            if entry is not None and entry.custom:
                entry = None  # a re-import of a custom model is identified afresh
        if entry is not None:
            if entry.loader != "diffusers":
                raise InvalidInput(f"'{entry.id}' is a single-file model ({entry.task}); a "
                                   "diffusers folder can only be imported as a fill model")
            if entry.architecture != architecture:
                raise InvalidInput(f"{path} holds a {architecture} pipeline, but '{entry.id}' "
                                   f"is {entry.architecture}; import it under another id")
            custom_json = entry.to_json() if entry.custom else None
        else:
            model_id = as_id or re.sub(r"[^A-Za-z0-9._+-]", "-", path.name)[:64].strip("-.")
            if not model_id or not ID_PATTERN.fullmatch(model_id):
                raise InvalidInput(f"cannot make a model id from {path.name}; give one with --as")
            if model_id.lower() in {e.id.lower() for e in self._builtin}:
                raise InvalidInput(f"'{model_id}' is a registry model; this folder is not it")
            entry = ModelEntry.custom_entry(model_id, "fill", architecture, 1, model_id,
                                            title=path.name)
            custom_json = entry.to_json()
        with self._lock:
            lock = self._pull_locks.setdefault(entry.id, threading.Lock())
        with lock:
            dest, record = folders.import_folder(path, self.models_dir, entry.filename, None)
            integrity.forget(dest)
            _stamp_folder(dest, record["files"])
            self._drop_replaced(entry, dest)
            record["installed_at"] = _now()
            if custom_json is not None:
                record["entry"] = custom_json
            self._update_manifest(entry.id, record)
            self._forget_loaded(entry.id)
        return dest

    @staticmethod
    def _folder_entry(registry: Registry, path: Path) -> ModelEntry | None:
        """The registry model a folder is, by its name or its Hugging Face repository
        (a repository's own name, or a cache snapshot `models--org--name/snapshots/REV`)."""
        found = registry.find(path.name)
        if found is not None:
            return found
        names = {path.name.lower()}
        cached = path.parent.parent.name
        if path.parent.name == "snapshots" and cached.startswith("models--"):
            names.add(cached[len("models--"):].replace("--", "/").lower())
        for e in registry:
            repo = (e.hub_repo or "").lower()
            if repo and (repo in names or repo.split("/")[-1] in names):
                return e
        return None

    def _check_content(self, path: Path, entry: ModelEntry, official: bool) -> None:
        """The file holds the registry's architecture and scale (spandrel models only).

        A TorchScript archive is opened only when its bytes are the official release's.
        """
        if entry.loader != "spandrel":
            if entry.loader == "onnx":
                self._check_onnx(path)
            elif entry.loader == "diffusers":
                self._check_checkpoint_family(path, entry)
            return
        from bridge.models import runtime

        descriptor = runtime.describe_state_dict(
            runtime.read_state_dict(path, allow_torchscript=official))
        arch, scale = descriptor.architecture.id, int(descriptor.scale)
        if arch != entry.architecture or scale != entry.scale:
            raise InvalidInput(
                f"{path.name} holds a {arch} x{scale} model, but '{entry.id}' is "
                f"{entry.architecture} x{entry.scale}; import it under another id")

    @staticmethod
    def _check_checkpoint_family(path: Path, entry: ModelEntry) -> None:
        from bridge.diffusion.source import family_of_checkpoint

        try:
            family = family_of_checkpoint(path)
        except Exception as e:  # unreadable in any way (safetensors, pickle, zip errors)
            raise InvalidInput(f"{path.name} is not a Stable Diffusion checkpoint the bridge "
                               f"can load: {getattr(e, 'message', e)}") from e
        arch = "StableDiffusionXL" if family == "sdxl" else "StableDiffusion"
        if arch != entry.architecture:
            raise InvalidInput(f"{path.name} is a {arch} checkpoint, but '{entry.id}' is "
                               f"{entry.architecture}; import it under another id")

    @staticmethod
    def _check_onnx(path: Path) -> None:
        import cv2

        try:
            cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as e:
            raise InvalidInput(f"{path.name} is not a loadable ONNX model") from e

    def _custom_entry(self, path: Path, as_id: str | None,
                      suffix: str) -> tuple[ModelEntry, dict[str, Any]]:
        from bridge.models import runtime

        if suffix not in (".safetensors", ".pth", ".pt", ".ckpt"):
            raise InvalidInput(f"{path.name}: not a model the registry knows; custom models "
                               "must be .safetensors or .pth files spandrel can load")
        model_id = as_id or re.sub(r"[^A-Za-z0-9._+-]", "-", path.stem)[:64].strip("-.") or "model"
        if not ID_PATTERN.fullmatch(model_id):
            raise InvalidInput(f"cannot make a model id from {path.name}; give one with --as")
        if model_id.lower() in {e.id.lower() for e in self._builtin}:
            raise InvalidInput(f"'{model_id}' is a registry model; this file is not it")
        descriptor = runtime.describe_state_dict(
            runtime.read_state_dict(path, allow_torchscript=False))
        task = _PURPOSE_TASK.get(str(descriptor.purpose), "denoise")
        entry = ModelEntry.custom_entry(model_id, task, descriptor.architecture.id,
                                        int(descriptor.scale), f"{model_id}{suffix}",
                                        title=path.stem)
        return entry, entry.to_json()

    def remove(self, model_id: str) -> None:
        entry = self.entry(model_id)
        rec = self._read_manifest().get(entry.id)
        state, path = self._file_state(entry, rec)
        partial = self._partial(entry)
        if state == "missing" and rec is None and not partial:
            raise NotFound(f"model '{entry.id}' is not installed", model=entry.id)
        folders.delete_path(path)
        dl.discard_partial(self.models_dir / entry.filename)
        folders.discard_staging(self.models_dir, entry.filename)
        self._update_manifest(entry.id, None)
        self._forget_loaded(entry.id)

    def require(self, model_id: str) -> Path:
        """The installed file or folder, its bytes checked if it changed on disk since they
        last were; ModelMissing (how to get it again) when missing or damaged."""
        entry = self.entry(model_id)
        rec = self._read_manifest().get(entry.id)
        state, path = self._file_state(entry, rec)
        if state == "installed":
            damaged = self._damaged(entry, rec, path)
            if not damaged:
                return path
            what = (f"is damaged: {', '.join(damaged[:3])} no longer "
                    f"{'matches' if len(damaged) == 1 else 'match'} the sha256 recorded when "
                    "it was installed")
        elif state == "corrupt":
            what = "is damaged (its file changed)"
        else:
            what = "is not installed"
        raise ModelMissing(f"model '{entry.id}' {what}: {self._missing_hint(entry)}",
                           model=entry.id, hint=self._missing_hint(entry))

    def _damaged(self, entry: ModelEntry, rec: dict[str, Any] | None, path: Path) -> list[str]:
        """The files of an installed model whose bytes are no longer the recorded ones,
        hashing only those whose size or mtime changed since they were checked (or that
        were never stamped). Damage found is recorded (state `corrupt`); files found intact
        are stamped again so the next use costs a stat. Nothing to compare with (no
        recorded sha256: a file put in the folder by hand) is taken as it is."""
        if rec is None:
            return []
        if path.is_dir():
            files = rec.get("files")
            if not isinstance(files, dict):
                return []
            expected = {rel: info["sha256"] for rel, info in files.items()
                        if isinstance(info, dict) and isinstance(info.get("sha256"), str)}
            changed = [rel for rel in sorted(expected)
                       if not integrity.unchanged(path / rel, files[rel])]
            names = {rel: rel for rel in changed}
            paths = {rel: path / rel for rel in changed}
        else:
            sha = rec.get("sha256")
            if not isinstance(sha, str) or integrity.unchanged(path, rec.get("checked")):
                return []
            expected, names, paths = {"": sha}, {"": path.name}, {"": path}
            changed = [""]
        if not changed:
            return []
        bad, stamps = [], {}
        for key in changed:
            try:
                before = integrity.stat_of(paths[key])
                ok = integrity.sha256_of(paths[key]) == expected[key]
                after = integrity.stat_of(paths[key])
            except FileNotFoundError:
                ok, before, after = False, None, None
            except OSError as e:  # unreadable now (a network share, permissions): not damage
                raise ModelError(f"could not read {paths[key]}: {e}", model=entry.id) from e
            if not ok:
                bad.append(key)
            elif before == after:
                stamps[key] = before
        self._record_check(entry, rec, [names[k] for k in bad], stamps, path.is_dir())
        return [names[k] for k in bad]

    def _record_check(self, entry: ModelEntry, checked: dict[str, Any], bad: list[str],
                      stamps: dict[str, Any], folder: bool) -> None:
        """Write what `_damaged` found into the record it checked, unless a pull or an import
        replaced that record meanwhile. A manifest that cannot be written is only logged:
        the per-process hash cache still keeps the next use cheap."""
        if bad:
            log.warning("model %s: %s changed on disk since it was installed (sha256 differs); "
                        "marked corrupt", entry.id, ", ".join(bad[:5]))
            self._forget_loaded(entry.id)
        with self._lock:
            rec = self._read_manifest().get(entry.id)
            if rec is None or rec.get("sha256") != checked.get("sha256"):
                return
            new = dict(rec)
            if bad:
                new.update({"corrupt": True, "verified_at": _now()})
                if folder:
                    new["damaged_files"] = bad[:20]
            if folder:
                new["files"] = {rel: dict(info) for rel, info in rec["files"].items()}
                for rel, stamp in stamps.items():
                    new["files"][rel]["mtime_ns"] = stamp["mtime_ns"]
            elif "" in stamps:
                new["checked"] = stamps[""]
            try:
                self._update_manifest(entry.id, new)
            except OSError as e:
                log.warning("could not record the check of model %s: %s", entry.id, e)

    # -- loading ------------------------------------------------------------------------
    @property
    def device(self) -> Any:
        if self._device is None:
            from bridge.models import runtime

            self._device = runtime.resolve_device(self.settings.device)
        return self._device

    @property
    def cache(self) -> Any:
        with self._lock:
            if self._cache is None:
                from bridge.models import runtime

                self._cache = runtime.ModelCache(
                    runtime.default_budget_bytes(self.device, self.settings.memory_budget_mb))
            return self._cache

    def load(self, model_id: str, denoise: float | None = None) -> Any:
        """A LoadedModel on the configured device (cached, LRU under the memory budget
        shared with every other kind of resident model: bridge.models.resident).

        `denoise` (0..1) blends a model with its registry `denoise_twin`: 1 is the model
        itself (full denoise), 0 the twin (keeps grain); Real-ESRGAN's network
        interpolation for realesr-general-x4v3.
        """
        from bridge.models import runtime

        entry = self.entry(model_id)
        if entry.loader != "spandrel":
            raise ModelError(f"model '{entry.id}' is loaded by its operation, not through "
                             "spandrel; use require() for its path", model=entry.id)
        twin: ModelEntry | None = None
        if denoise is not None:
            if entry.denoise_twin is None:
                raise ModelError(f"model '{entry.id}' has no denoise strength", model=entry.id)
            denoise = round(min(1.0, max(0.0, float(denoise))), 2)
            if denoise < 1.0:
                twin = self.entry(entry.denoise_twin)
        key = (entry.id, twin.id if twin else None, denoise if twin else None)
        found = self.cache.get(key)
        if found is not None:
            return found
        with self._lock:
            lock = self._pull_locks.setdefault(f"load:{key}", threading.Lock())
        with lock:
            found = self.cache.get(key)
            if found is not None:
                return found
            path = self.require(entry.id)
            trusted = self._read_manifest().get(entry.id, {}).get("official", False)
            twin_path = self.require(twin.id) if twin else None

            def read() -> dict[str, Any]:
                state = runtime.read_state_dict(path, allow_torchscript=bool(trusted))
                if twin_path is None:
                    return state
                other = runtime.read_state_dict(twin_path, allow_torchscript=False)
                return runtime.blend_state_dicts(state, other, float(denoise or 0.0))

            loaded = runtime.load_model(
                entry.id, read, self.device, expect_architecture=entry.architecture,
                make_room=lambda nbytes: self.cache.make_room(nbytes, self.device))
            if int(loaded.scale) != entry.scale:
                raise ModelError(f"{entry.id}: the file is a x{loaded.scale} model, the "
                                 f"registry lists x{entry.scale}", model=entry.id)
            self.cache.put(key, loaded)
            return loaded

    def _forget_loaded(self, model_id: str) -> None:
        if self._cache is not None:
            self._cache.drop(lambda key: model_id in (key[0], key[1]))


_default: ModelManager | None = None
_default_lock = threading.Lock()


def default_manager() -> ModelManager:
    """The process's manager, rebuilt only if the settings changed (tests, RB_HOME)."""
    global _default
    settings = load_settings()
    with _default_lock:
        if _default is None or _default.settings != settings:
            _default = ModelManager(settings)
        return _default


__all__ = ["ModelManager", "default_manager", "registry_from_env"]
