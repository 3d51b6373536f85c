from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.models.file_server import FileServer

FAULT_INJECTION = Path(__file__).with_name("fault_injection")


MirrorFn = Callable[[dict[str, bytes]], tuple[Path, dict[str, str]]]


@pytest.fixture
def mirror(tmp_path: Path, file_server: FileServer) -> MirrorFn:
    """mirror({model id: file bytes}) -> (RB_HOME, env) for a bridge whose registry serves
    those files from 127.0.0.1 (RB_MODEL_REGISTRY), checksums and sizes included."""
    from bridge.models.registry import builtin_registry

    def make(files: dict[str, bytes]) -> tuple[Path, dict[str, str]]:
        entries = []
        for e in builtin_registry():
            data = files.get(e.id)
            if data is not None:
                e = dataclasses.replace(e, url=file_server.add(e.filename, data), size=len(data),
                                        sha256=hashlib.sha256(data).hexdigest(), md5=None)
            entries.append(e.to_json())
        registry = tmp_path / "mirror.json"
        registry.write_text(json.dumps({"models": entries}))
        return tmp_path / "home", {"RB_MODEL_REGISTRY": str(registry), "RB_DEVICE": "cpu"}

    return make
