"""Fixtures shared by every test module: real data folders and isolated bridge homes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RB_SHARED_DIR", ROOT.parent / "shared"))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own RB_HOME: no test reads or writes the user's real config."""
    home = tmp_path_factory.mktemp("rb-home")
    monkeypatch.setenv("RB_HOME", str(home))
    for var in ("RB_CONFIG_DIR", "RB_MODELS_DIR", "RB_CACHE_DIR", "RB_LOG_DIR", "RB_PORT"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def shared_models() -> Path:
    path = SHARED / "models"
    if not path.is_dir():
        pytest.skip("../shared/models is not present")
    return path


@pytest.fixture
def shared_samples() -> Path:
    path = SHARED / "samples"
    if not path.is_dir():
        pytest.skip("../shared/samples is not present")
    return path


@pytest.fixture(scope="module")
def bridge_server(tmp_path_factory: pytest.TempPathFactory):
    """The real bridge, started once per test module in its own RB_HOME."""
    from tests.support.server import running_bridge

    home = tmp_path_factory.mktemp("bridge-home")
    with running_bridge(home) as b:
        yield b


@pytest.fixture
def file_server():
    """A local HTTP file server (127.0.0.1) standing in for a model host."""
    from tests.models.file_server import FileServer

    server = FileServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
