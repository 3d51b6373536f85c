"""Every input the fuzzers ever found breaking the contract, replayed on every run.

tests/fuzz_corpus/<target>/ holds them (written by tests/hardening/fuzzing.py when a
fuzz test fails, committed with the fix): each must now end in a value or a 4xx
BridgeError (model_error allowed where a run named a file that is no model), never
another exception and never a hang.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.hardening.fuzzing import CORPUS, contract, corpus

TARGETS = ("image", "mask", "raw", "recipe", "params", "run", "psd", "http")


def test_every_corpus_folder_is_replayed():
    found = {p.name for p in CORPUS.iterdir() if p.is_dir()} if CORPUS.is_dir() else set()
    assert found <= set(TARGETS), f"no replay for {sorted(found - set(TARGETS))}"


def cases(target: str) -> list:
    return [pytest.param(p, id=p.name) for p in corpus(target)]


@pytest.mark.parametrize("path", cases("image"))
def test_image(path):
    from tests.hardening.test_fuzz_inputs import decode_and_reencode

    data = path.read_bytes()
    contract("image", data, lambda: decode_and_reencode(data))


@pytest.mark.parametrize("path", cases("mask"))
def test_mask(path):
    from bridge.imaging import codecs
    from bridge.imaging.geometry import Extent

    case = json.loads(path.read_text())
    data = bytes.fromhex(case["data"])
    contract("mask", path.read_bytes(),
             lambda: codecs.decode_mask(data, Extent(*case["extent"]), raw=case["raw"]))


@pytest.mark.parametrize("path", cases("raw"))
def test_raw(path):
    from bridge.imaging import codecs

    case = json.loads(path.read_text())
    contract("raw", path.read_bytes(),
             lambda: codecs.decode_raw(bytes(case["length"]), *case["layout"], max_pixels=2_000_000))


@pytest.mark.parametrize("path", cases("recipe"))
def test_recipe(path):
    from bridge.recipes import check_recipe, parse_recipe

    text = path.read_bytes().decode("utf-8", "surrogatepass")
    contract("recipe", path.read_bytes(), lambda: check_recipe(parse_recipe(text, base_dir=None)))


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("path", cases("params"))
def test_params(path, with_mask):
    from bridge.config import load_settings
    from bridge.imaging.image import Image
    from bridge.imaging.mask import Mask
    from bridge.models.manager import ModelManager
    from bridge.ops.registry import get_operation, prepare

    case = json.loads(path.read_text())
    image = Image(np.zeros((16, 16, 3), np.uint8))
    mask = Mask.from_array(np.pad(np.full((6, 6), 255, np.uint8), 5)) if with_mask else None
    manager = ModelManager(load_settings())
    contract("params", path.read_bytes(), lambda: prepare(
        get_operation(case["op"]), image, mask, case["params"], manager))


@pytest.mark.parametrize("path", cases("run"))
def test_run(path):
    from bridge.imaging.image import Image
    from bridge.imaging.mask import Mask
    from bridge.ops.base import OpContext
    from bridge.ops.registry import get_operation, run_operation

    case = json.loads(path.read_text())
    op = get_operation(case["op"])
    image = Image(np.zeros((24, 24, 3), np.uint8) + 100)
    mask = Mask.from_array(np.pad(np.full((8, 8), 255, np.uint8), 8)) if op.mask != "none" else None
    contract("run", path.read_bytes(), lambda: run_operation(
        case["op"], image, mask, case["params"], OpContext(max_pixels=250_000)),
        statuses=(400, 404, 409, 413, 415, 500, 507))


@pytest.mark.parametrize("path", cases("psd"))
def test_psd(path):
    from tests.hardening.test_fuzz_psd import open_and_apply

    data = path.read_bytes()
    contract("psd", data, lambda: open_and_apply(data))


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    from tests.support.server import running_bridge

    with running_bridge(tmp_path_factory.mktemp("corpus-home"),
                        env={"RB_MAX_PIXELS": "4000000", "RB_MAX_BODY_MB": "4"}) as b:
        yield b


@pytest.mark.parametrize("path", cases("http"))
def test_http(path, bridge):
    from tests.hardening.test_fuzz_server import check_answer, from_template

    check_answer(bridge, from_template(bridge, path.read_bytes()))
