"""Reading the end of a log without reading the whole file."""

from __future__ import annotations

from bridge.dashboard import logtail


def test_last_lines_across_block_boundaries(tmp_path):
    path = tmp_path / "bridge.log"
    lines = [f"line {i} " + "x" * (i % 300) for i in range(5000)]
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 4 * logtail.BLOCK
    for n in (1, 2, 37, 400, 2000):
        assert logtail.tail(path, n) == lines[-n:]


def test_limits_and_missing_file(tmp_path):
    path = tmp_path / "bridge.log"
    assert logtail.tail(path, 10) == []
    path.write_text("only\n")
    assert logtail.tail(path, 10) == ["only"]
    assert logtail.tail(path, 0) == ["only"]  # at least one line
    path.write_text("\n".join(map(str, range(5000))))
    assert len(logtail.tail(path, 10**6)) == logtail.MAX_LINES


def test_bad_bytes_do_not_break_the_tail(tmp_path):
    path = tmp_path / "bridge.log"
    path.write_bytes(b"ok\n\xff\xfe broken\nlast\n")
    assert logtail.tail(path, 2) == ["\ufffd\ufffd broken", "last"]
