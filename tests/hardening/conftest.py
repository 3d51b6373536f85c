from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.file_server import FileServer


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """A local HTTP file server (127.0.0.1) standing in for a model host."""
    server = FileServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
