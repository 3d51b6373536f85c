"""Fixtures for the PSD tests (helpers live in psd_testkit)."""

from __future__ import annotations

import pytest
from psd_testkit import INVERT

from bridge.ops.base import Operation


@pytest.fixture
def invert_op(monkeypatch: pytest.MonkeyPatch) -> Operation:
    """The masked test operation, registered for this test only."""
    from bridge.ops import registry

    monkeypatch.setitem(registry.operations(), INVERT.name, INVERT)
    return INVERT
