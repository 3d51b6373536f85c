"""Helpers shared by the face tests: isolated model managers and the real sample photo."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from bridge.config import Settings
from bridge.faces.detect import YUNET_FILE
from bridge.models.manager import ModelManager

# As tests/conftest.py finds it, for module-scoped fixtures (the shared_models fixture is
# per test).
SHARED = Path(os.environ.get("RB_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))


def new_manager(home: Path) -> ModelManager:
    """A manager of its own folder on the CPU (module-scoped fixtures cannot use RB_HOME)."""
    return ModelManager(Settings(config_dir=home / "config", models_dir=home / "models",
                                 cache_dir=home / "cache", log_dir=home / "logs", device="cpu"))


def shared_or_skip() -> Path:
    if not (SHARED / "models" / YUNET_FILE).is_file() or not (SHARED / "samples").is_dir():
        pytest.skip("../shared/models and ../shared/samples are not present")
    return SHARED


def hopper(shared: Path) -> np.ndarray:
    return np.asarray(PILImage.open(shared / "samples" / "hopper.jpg").convert("RGB"))
