"""The model registry: what models exist, where they come from, and what they are for.

The data lives in `registry.json` next to this file (ids, tasks, spandrel architecture
ids, official URLs and checksums, sizes, licences, which operation uses a model by
default). This module only reads it into typed, immutable `ModelEntry` values; nothing
here touches the network, the disk cache or torch.

Tasks are operation-shaped names: "upscale" (super-resolution, any integer scale),
"restore-faces", "detect-faces", "denoise", "inpaint". Other operations find their
models with `Registry.for_task(task)` and `entry.default_for`.

Entries a user imports that the registry does not know become *custom* entries (kept
by the manager in its manifest, `custom=True`), built with `ModelEntry.custom_entry`.

Entries with `"format": "diffusers"` and a `hub_repo` are folders pulled from a Hugging
Face repository (`hub_revision`: the pinned commit, `hub_variant`: preferred weights
variant, `hub_endpoint`: the Hub or a mirror); they have no single `url`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

TASKS = ("upscale", "restore-faces", "detect-faces", "denoise", "inpaint", "fill", "remove-background")
# File types spandrel loads (safetensors preferred; pickles only through weights-only
# loading) and the ONNX models loaded by their operation through OpenCV/onnxruntime.
SPANDREL_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
ONNX_SUFFIXES = (".onnx",)
# Architectures that are not loaded through spandrel. "diffusers" models are folders
# (a diffusers repository, `hub_repo`) or single .safetensors/.ckpt checkpoints.
NON_SPANDREL = {"YuNet": "onnx", "U2Net": "onnx", "ISNet": "onnx", "BiRefNet": "onnx",
                "StableDiffusion": "diffusers", "StableDiffusionXL": "diffusers"}
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
HUB_REPO_PATTERN = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# Single-file checkpoints a diffusers entry accepts (its operation loads nothing else).
DIFFUSERS_FILE_SUFFIXES = (".safetensors", ".ckpt")

_DATA = Path(__file__).with_name("registry.json")


@dataclass(frozen=True)
class ModelEntry:
    id: str
    title: str
    task: str
    architecture: str
    scale: int
    filename: str
    url: str | None
    sha256: str | None
    license: str
    non_commercial: bool
    default_for: tuple[str, ...] = ()
    priority: int = 0
    md5: str | None = None
    size: int | None = None
    denoise_twin: str | None = None
    requires: tuple[str, ...] = ()
    source: str = ""
    description: str = ""
    custom: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not ID_PATTERN.fullmatch(self.id):
            raise ValueError(f"invalid model id {self.id!r}")
        if self.task not in TASKS:
            raise ValueError(f"model {self.id}: unknown task {self.task!r}")
        for name in ("sha256", "md5"):
            value = getattr(self, name)
            if value is not None and not re.fullmatch(r"[0-9a-f]+", value):
                raise ValueError(f"model {self.id}: {name} must be lower-case hex")
        if self.sha256 is not None and len(self.sha256) != 64:
            raise ValueError(f"model {self.id}: sha256 must have 64 hex digits")
        if self.md5 is not None and len(self.md5) != 32:
            raise ValueError(f"model {self.id}: md5 must have 32 hex digits")
        if self.scale < 1:
            raise ValueError(f"model {self.id}: scale must be at least 1")
        repo = self.extra.get("hub_repo")
        if repo is not None and not (isinstance(repo, str) and HUB_REPO_PATTERN.fullmatch(repo)):
            raise ValueError(f"model {self.id}: hub_repo must look like 'org/name'")
        for name in ("hub_revision", "hub_variant", "hub_endpoint"):
            value = self.extra.get(name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise ValueError(f"model {self.id}: {name} must be a non-empty string")
        # The file lives in the models folder, by this name: never a path out of it.
        name = self.filename
        if (not name or name != name.strip() or any(c in name for c in "/\\:\0")
                or name.startswith(".")):
            raise ValueError(f"model {self.id}: filename {name!r} must be a plain file name")

    @property
    def loader(self) -> str:
        """'spandrel' for torch weights, 'onnx' for models their operation loads itself."""
        return NON_SPANDREL.get(self.architecture, "spandrel")

    @property
    def suffixes(self) -> tuple[str, ...]:
        if self.loader == "diffusers":
            return DIFFUSERS_FILE_SUFFIXES
        return ONNX_SUFFIXES if self.loader == "onnx" else SPANDREL_SUFFIXES

    @property
    def hub_repo(self) -> str | None:
        """The Hugging Face repository a diffusers folder model is pulled from, if any."""
        if self.extra.get("format") != "diffusers":
            return None
        return self.extra.get("hub_repo")

    @property
    def hub_revision(self) -> str:
        return self.extra.get("hub_revision") or "main"

    @property
    def hub_variant(self) -> str | None:
        return self.extra.get("hub_variant")

    @property
    def hub_endpoint(self) -> str | None:
        return self.extra.get("hub_endpoint")

    @property
    def downloadable(self) -> bool:
        """`pull` can fetch it: a file URL, or a Hub repository for a folder model."""
        return self.url is not None or self.hub_repo is not None

    @property
    def has_official_checksum(self) -> bool:
        # A Hub folder's files are checked against the hashes the Hub lists for each.
        return self.sha256 is not None or self.md5 is not None or self.hub_repo is not None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["default_for"] = list(self.default_for)
        data["requires"] = list(self.requires)
        data.pop("extra")
        return data

    @staticmethod
    def from_json(data: dict[str, Any], custom: bool = False) -> ModelEntry:
        known = {f for f in ModelEntry.__dataclass_fields__ if f != "extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["default_for"] = tuple(values.get("default_for") or ())
        values["requires"] = tuple(values.get("requires") or ())
        values["custom"] = custom or bool(values.get("custom", False))
        extra = {k: v for k, v in data.items() if k not in known}
        return ModelEntry(**values, extra=extra)

    @staticmethod
    def custom_entry(model_id: str, task: str, architecture: str, scale: int,
                     filename: str, title: str = "") -> ModelEntry:
        """An entry for a model file the user brought that the registry does not list."""
        return ModelEntry(
            id=model_id, title=title or model_id, task=task, architecture=architecture,
            scale=scale, filename=filename, url=None, sha256=None, license="unknown",
            non_commercial=False, custom=True, priority=10,
            description="Imported by the user; licence unknown.",
        )


class Registry:
    """Entries by id, in file order. Immutable; build another to change it."""

    def __init__(self, entries: list[ModelEntry]) -> None:
        self._entries: dict[str, ModelEntry] = {}
        for e in entries:
            if e.id.lower() in {k.lower() for k in self._entries}:
                raise ValueError(f"model id {e.id!r} registered twice")
            self._entries[e.id] = e
        for e in entries:
            if e.denoise_twin is not None:
                twin = self._entries.get(e.denoise_twin)
                if twin is None or twin.architecture != e.architecture or twin.scale != e.scale:
                    raise ValueError(f"model {e.id}: denoise twin {e.denoise_twin!r} "
                                     "must be a registered model of the same architecture")

    @staticmethod
    def from_file(path: Path) -> Registry:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Registry([ModelEntry.from_json(m) for m in data["models"]])

    def __iter__(self):
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._entries

    def get(self, model_id: str) -> ModelEntry | None:
        return self._entries.get(model_id)

    def find(self, name: str) -> ModelEntry | None:
        """By id, case-insensitively, or by file name / file stem."""
        if name in self._entries:
            return self._entries[name]
        low = name.lower()
        for e in self._entries.values():
            if low in (e.id.lower(), e.filename.lower(), Path(e.filename).stem.lower()):
                return e
        return None

    def by_checksum(self, sha256: str, md5: str | None = None) -> ModelEntry | None:
        for e in self._entries.values():
            if (e.sha256 is not None and e.sha256 == sha256) or (
                    md5 is not None and e.md5 is not None and e.md5 == md5):
                return e
        return None

    def for_task(self, task: str) -> list[ModelEntry]:
        """Entries of a task, best first (priority, then file order)."""
        found = [e for e in self._entries.values() if e.task == task]
        return sorted(found, key=lambda e: -e.priority)

    def with_entries(self, extra: list[ModelEntry]) -> Registry:
        return Registry([*self._entries.values(), *extra])


@cache
def builtin_registry() -> Registry:
    return Registry.from_file(_DATA)
