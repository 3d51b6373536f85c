"""Planning outputs (names, folders, collisions) and the journal (torn lines, compaction, lock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.batch.journal import BatchLocked, Journal, remove_stale_temporaries
from bridge.batch.plan import find_inputs, output_format, plan
from bridge.errors import InvalidParams
from bridge.recipes import parse_recipe


def touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def recipe(fmt: str = "same", suffix: str = "", step: str = '{"op": "passthrough"}'):
    return parse_recipe(f'{{"output": {{"format": "{fmt}", "suffix": "{suffix}"}},'
                        f' "steps": [{step}]}}')


def test_inputs_are_found_recursively_skipping_hidden_and_the_output_folder(tmp_path):
    src = tmp_path / "in"
    touch(src, "a.jpg", "b.PNG", "c.tif", "d.webp", "notes.txt", ".hidden.jpg",
          "sub/e.jpeg", "sub/deeper/f.tiff", ".cache/g.jpg", "out/old.jpg")
    assert find_inputs(src, src / "out") == [
        "a.jpg", "b.PNG", "c.tif", "d.webp", "sub/deeper/f.tiff", "sub/e.jpeg"]


def test_output_names_mirror_folders_and_take_the_format(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    touch(src, "a.jpg", "sub/b.tif", "sub/c.jpeg")
    inputs = find_inputs(src, out)
    same = {t.rel: (t.out_rel, t.fmt) for t in plan(src, out, recipe(), inputs)}
    assert same == {"a.jpg": ("a.jpg", "jpeg"), "sub/b.tif": ("sub/b.tif", "tiff"),
                    "sub/c.jpeg": ("sub/c.jpeg", "jpeg")}
    png = {t.rel: t.out_rel for t in plan(src, out, recipe("png", "_web"), inputs)}
    assert png == {"a.jpg": "a_web.png", "sub/b.tif": "sub/b_web.png",
                   "sub/c.jpeg": "sub/c_web.png"}
    tasks = plan(src, out, recipe("webp"), inputs)
    assert tasks[1].dst == str(out.resolve() / "sub" / "b.webp")


def test_a_step_format_hint_is_used_when_output_says_same(tmp_path):
    r = recipe(step='{"op": "standardize", "format": "webp", "quality": 80}')
    assert output_format(r) == ("webp", 80)
    assert output_format(recipe("png")) == ("png", 95)


def test_collisions_get_distinct_stable_names(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    touch(src, "a.jpg", "a.png", "A.tif", "b.png")
    inputs = find_inputs(src, out)
    first = {t.rel: t.out_rel for t in plan(src, out, recipe("jpeg"), inputs)}
    assert len({v.lower() for v in first.values()}) == 4
    assert first["b.png"] == "b.jpg"
    assert first["a.jpg"] == "a_jpg.jpg" and first["a.png"] == "a_png.jpg"
    # A name the journal already recorded is kept, whatever is added later.
    touch(src, "b.jpg")
    again = {t.rel: t.out_rel for t in plan(src, out, recipe("jpeg"), find_inputs(src, out),
                                            recorded={"b.png": "b.jpg"})}
    assert again["b.png"] == "b.jpg" and again["b.jpg"] == "b_jpg.jpg"


def test_outputs_never_land_on_inputs(tmp_path):
    src = tmp_path / "in"
    touch(src, "a.jpg")
    with pytest.raises(InvalidParams):
        plan(src, src, recipe(), ["a.jpg"])


def test_journal_survives_a_torn_line_and_compacts_to_the_latest(tmp_path):
    j = Journal(tmp_path)
    j.open({"recipe": "r1"})
    j.append({"type": "file", "input": "a.jpg", "status": "failed"})
    j.append({"type": "file", "input": "b.jpg", "status": "done"})
    j.append({"type": "file", "input": "a.jpg", "status": "done"})
    j.close()
    with j.path.open("a") as fh:
        fh.write('{"type": "file", "input": "c.jpg", "sta')  # killed mid-write
    latest = j.latest()
    assert latest["a.jpg"]["status"] == "done" and set(latest) == {"a.jpg", "b.jpg"}
    j.compact({"recipe": "r1"})
    lines = [json.loads(x) for x in j.path.read_text().splitlines()]
    assert [x.get("input") for x in lines] == [None, "a.jpg", "b.jpg"]
    assert not list(tmp_path.glob(".retouch-batch/.*.tmp"))


def test_one_batch_per_output_folder(tmp_path):
    a, b = Journal(tmp_path), Journal(tmp_path)
    a.lock()
    try:
        with pytest.raises(BatchLocked):
            b.lock()
    finally:
        a.unlock()
    b.lock()
    b.unlock()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    touch(tmp_path, "sub/.a.jpg.0123abcd.tmp", "sub/a.jpg", ".b.png.ffffffff.tmp",
          "keep.tmp", ".c.jpg.xyz.tmp")
    assert remove_stale_temporaries(tmp_path) == 2
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [".c.jpg.xyz.tmp", "keep.tmp", "sub/a.jpg"]
