"""The guard the model tests rely on really refuses and records outside connections."""

from __future__ import annotations

import socket

import pytest

from tests.inpaint.support import block_network


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    yield from block_network(monkeypatch)


def test_outside_addresses_are_refused_and_recorded(no_network: list) -> None:
    with pytest.raises(OSError):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(OSError):
        s.connect(("93.184.216.34", 80))
    assert "huggingface.co" in no_network and ("93.184.216.34", 80) in no_network


def test_loopback_still_works(no_network: list) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
    assert no_network == []
