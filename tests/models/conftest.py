from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.file_server import FileServer


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
