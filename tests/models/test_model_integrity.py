"""A model file changed on disk after it was installed: its bytes are checked again before
use (hashing only files whose size or mtime changed), a damaged one is refused with the
way to get it again, and a re-pull over HTTP fixes it. No `verify` is run in these tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bridge.config import load_settings
from bridge.errors import ModelMissing
from bridge.models import integrity
from bridge.models.manager import ModelManager
from tests.models import tiny_models as tm
from tests.models.file_server import FileServer
from tests.models.test_manager import served_registry

MODEL = "realesr-animevideov3"
TILE = np.random.default_rng(2).random((12, 12, 3), dtype=np.float32)


def flip_keeping_size(path: Path, n: int = 16) -> None:
    """Flip n bytes in the middle of the file, as damage or an edit would, and move its
    mtime forward as any write does (explicitly: a coarse clock could leave it equal)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + n):
        data[i] ^= 0xFF
    st = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def touch_forward(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the integrity check hashes, in order."""
    seen: list[Path] = []
    real = integrity.hash_file

    def counting(path: Path) -> str:
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(integrity, "hash_file", counting)
    return seen


@pytest.fixture
def served(file_server: FileServer, tmp_path: Path) -> tuple[FileServer, bytes, object]:
    data = tm.save(tm.compact(seed=4), tmp_path / "tiny.pth").read_bytes()
    return file_server, data, served_registry(file_server, {MODEL: data, "yunet": b"onnx" * 999})


def fresh(registry: object) -> ModelManager:
    """A manager as a new process would have it: nothing loaded yet (the per-process hash
    cache is module state, shared; the tests that need it empty name other mtimes)."""
    return ModelManager(load_settings(), registry)  # type: ignore[arg-type]


def test_a_file_damaged_on_disk_is_refused_and_a_re_pull_fixes_it(served, hashes) -> None:
    server, data, registry = served
    m = fresh(registry)
    path = m.pull(MODEL)
    good = m.load(MODEL)(TILE.copy())

    flip_keeping_size(path)
    assert m.state(MODEL)["state"] == "installed"  # the listing stays cheap: size only
    m2 = fresh(registry)
    with pytest.raises(ModelMissing) as err:
        m2.load(MODEL)
    assert "damaged" in err.value.message and path.name in err.value.message
    assert f"retouch-bridge models pull {MODEL}" in err.value.message
    assert err.value.status == 409 and err.value.details["model"] == MODEL
    assert hashes == [path]
    assert m2.state(MODEL)["state"] == "corrupt"  # recorded: the listing shows it now
    assert not m2.is_usable(MODEL)

    requests = len(server.requests)
    m2.pull(MODEL)  # over HTTP from the local server, without --force
    assert len(server.requests) == requests + 1
    assert path.read_bytes() == data and m2.state(MODEL)["state"] == "installed"
    again = fresh(registry).load(MODEL)(TILE.copy())
    assert np.array_equal(again, good)


def test_an_unchanged_file_is_not_hashed_again(served, hashes) -> None:
    _, _, registry = served
    m = fresh(registry)
    path = m.pull(MODEL)  # hashed while downloaded; stamped then
    fresh(registry).load(MODEL)
    fresh(registry).require(MODEL)
    assert hashes == []

    touch_forward(path)  # same bytes, new mtime: hashed once, found intact, stamped again
    fresh(registry).load(MODEL)
    assert hashes == [path]
    fresh(registry).load(MODEL)
    assert hashes == [path]
    assert m.state(MODEL)["state"] == "installed"

    # A manifest from before the stamps (no "checked"): hashed once, then stamped.
    doc = json.loads(m.manifest_path.read_text())
    del doc["models"][MODEL]["checked"]
    m.manifest_path.write_text(json.dumps(doc))
    touch_forward(path)
    fresh(registry).require(MODEL)
    fresh(registry).require(MODEL)
    assert hashes == [path, path]
    assert "checked" in json.loads(m.manifest_path.read_text())["models"][MODEL]


def test_the_hash_is_cached_per_process_when_the_record_cannot_be_written(
        served, hashes, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, registry = served
    path = fresh(registry).pull(MODEL)
    touch_forward(path)

    def read_only(self, model_id, record):
        raise PermissionError("read-only models folder")

    monkeypatch.setattr(ModelManager, "_update_manifest", read_only)
    for _ in range(3):
        fresh(registry).require(MODEL)
    assert hashes == [path]


def test_verify_and_import_stamp_what_they_checked(served, hashes, tmp_path: Path) -> None:
    _, _, registry = served
    m = fresh(registry)
    dest = m.import_file(tm.save(tm.compact(seed=9), tmp_path / "a.pth"), as_id=MODEL)
    m.require(MODEL)
    assert hashes == []
    touch_forward(dest)
    assert m.verify(MODEL)  # verify hashes by itself, and stamps
    m.require(MODEL)
    assert hashes == []


def test_an_onnx_model_goes_through_the_same_check(served, hashes) -> None:
    """yunet (OpenCV's face detector) is found with require(), as every ONNX model is."""
    _, _, registry = served
    m = fresh(registry)
    path = m.pull("yunet")
    assert m.require("yunet") == path
    flip_keeping_size(path)
    with pytest.raises(ModelMissing, match="damaged"):
        fresh(registry).require("yunet")
    assert m.state("yunet")["state"] == "corrupt"


def test_cli_pull_downloads_a_file_changed_on_disk_again(
        served, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`models pull ID` on a model it would call installed hashes a changed file first."""
    from bridge.cli.main import main

    server, data, registry = served
    mirror = tmp_path / "mirror.json"
    mirror.write_text(json.dumps({"models": [e.to_json() for e in registry]}))
    monkeypatch.setenv("RB_MODEL_REGISTRY", str(mirror))
    assert main(["models", "pull", MODEL]) == 0
    path = fresh(registry).require(MODEL)
    capsys.readouterr()
    assert main(["models", "pull", MODEL]) == 0
    assert "already installed" in capsys.readouterr().out
    flip_keeping_size(path)
    requests = len(server.requests)
    assert main(["models", "pull", MODEL]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"installed {MODEL}: ") and "changed on disk" in err
    assert len(server.requests) == requests + 1 and path.read_bytes() == data
