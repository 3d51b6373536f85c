"""Every name that reaches the file system, with `..`, separators, symlinks and special files.

- model ids and `--as` names (import, pull over HTTP), and registry file names;
- batch inputs and outputs (symlinks out of the folders, FIFOs, devices);
- PSD layer names (they never become file names) and PSD job folders;
- dashboard report names;
- file parameters sent over HTTP: color-match's reference, and the model paths of
  remove, fill and remove-background. The bridge accepts local paths from a client that
  holds the pairing token (see SECURITY.md: such a client is the user), but only reads
  them, only regular files (folders where a model is one), through loaders that run no
  code: a pickle that would run code is refused without running it.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge.errors import BridgeError, InvalidInput
from tests.hardening.helpers import raw_layout
from tests.support.images import png_bytes
from tests.support.server import ROOT, Bridge, running_bridge

HOSTILE_IDS = ["../evil", "..", ".", "a/b", "a\\b", "/abs", "C:evil", ".hidden", "a\x00b",
               "x" * 65, "-dash", " space", "evil/../../x",
               # `$` in a pattern also matches before a final newline: ids are fullmatched.
               "trailing-newline\n", "evil\n.pth"]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- models ---------------------------------------------------------------------------------
def test_import_as_a_hostile_id_is_refused_and_writes_nothing(tmp_path: Path):
    from bridge.config import load_settings
    from bridge.models.manager import ModelManager
    from tests.models import tiny_models as tm

    weights = tm.save(tm.compact(), tmp_path / "w.pth")
    manager = ModelManager(load_settings())
    before = tree(tmp_path)
    for bad in HOSTILE_IDS:
        with pytest.raises(InvalidInput, match="invalid model id"):
            manager.import_file(weights, as_id=bad)
    created = tree(tmp_path) - before
    assert all(p.startswith("rb-home") or "models" in p for p in created), created
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil.pth").exists()


def test_the_cli_refuses_a_hostile_as_name(tmp_path: Path):
    from tests.models import tiny_models as tm

    weights = tm.save(tm.compact(), tmp_path / "w.pth")
    env = {**os.environ, "RB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bridge", "models", "import", str(weights),
                           "--as", "../../escaped"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "invalid model id" in done.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped.pth").exists()


def test_registry_file_names_cannot_leave_the_models_folder(tmp_path: Path, monkeypatch):
    from bridge.errors import ModelError
    from bridge.models.manager import registry_from_env
    from bridge.models.registry import ModelEntry, builtin_registry

    entry = builtin_registry().get("realesr-animevideov3").to_json()
    for bad in ["../outside.pth", "sub/x.pth", "..\\x.pth", ".hidden.pth", "", "C:x.pth"]:
        with pytest.raises(ValueError, match="plain file name"):
            ModelEntry.from_json({**entry, "filename": bad})
    mirror = tmp_path / "mirror.json"
    mirror.write_text(json.dumps({"models": [{**entry, "filename": "../../outside.pth"}]}))
    monkeypatch.setenv("RB_MODEL_REGISTRY", str(mirror))
    with pytest.raises(ModelError, match="not a usable registry file"):
        registry_from_env()


def test_a_manifest_naming_a_file_outside_is_not_followed(tmp_path: Path):
    from bridge.config import load_settings
    from bridge.models.manager import ModelManager

    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    manager = ModelManager(load_settings())
    manager._update_manifest("realesr-animevideov3", {"file": f"../../{outside}", "size": 7,
                                                      "sha256": "0" * 64, "source": "import"})
    assert manager.state("realesr-animevideov3")["path"] is None  # not the file outside
    manager.remove("realesr-animevideov3")
    assert outside.read_text() == "keep me"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    with running_bridge(tmp_path_factory.mktemp("traversal-home")) as b:
        yield b


@pytest.mark.parametrize("model_id", ["..%2F..%2Fevil", "%2e%2e", "a%00b", "..%5Cevil",
                                      "%2Fetc%2Fpasswd"])
def test_pull_of_a_hostile_id_over_http_is_404(bridge: Bridge, model_id: str):
    before = tree(bridge.home)
    r = bridge.request("POST", f"/v1/models/{model_id}/pull")
    assert r.status == 404 and r.json()["error"]["message"]
    assert tree(bridge.home) == before


# -- dashboard reports ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["..%2Fconfig%2Ftoken", "%2e%2e/%2e%2e/config/token",
                                  "..%5C..%5Cconfig%5Ctoken", "%2Fetc%2Fpasswd", "a%00b",
                                  "link-out", "link-dir/token", "%252e%252e%252fconfig%252ftoken"])
def test_report_names_stay_in_the_reports_folder(bridge: Bridge, name: str):
    reports = bridge.home / "cache" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    if not (reports / "link-out").exists():
        (reports / "link-out").symlink_to(bridge.home / "config" / "token")
        (reports / "link-dir").symlink_to(bridge.home / "config")
    r = bridge.get(f"/v1/reports/{name}")
    assert r.status == 404, (r.status, r.body[:200])
    assert bridge.token.encode() not in r.body


# -- PSD layer names -----------------------------------------------------------------------------
def test_psd_layer_names_never_become_file_names(bridge: Bridge, tmp_path: Path):
    from psd_tools import PSDImage

    psd = PSDImage.new("RGB", (16, 16), depth=8)
    psd.create_pixel_layer_from_array(np.ones((8, 8, 4), np.float32), name="../../../escaped",
                                      top=0, left=0)
    path = tmp_path / "doc.psd"
    psd.save(path)
    before = tree(bridge.home)
    r = bridge.post_form("/v1/psd/apply", [("psd", path.read_bytes(), "image/x-photoshop"),
                                           ("op", "passthrough", None),
                                           ("layer", "../../../escaped", None)])
    job = bridge.wait(r.json()["id"])
    assert job["state"] == "done", job
    new = tree(bridge.home) - before
    assert all(p.startswith("cache/job") for p in new), new
    assert not any("escaped" in p for p in tree(bridge.home.parent))
    # The CLI's export writes exactly the file it is told to, whatever the layer is called.
    out = tmp_path / "out.tif"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bridge", "psd", "export", str(path), "--layer",
                           "../../../escaped", "-o", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.psd", "out.tif"]


# -- file parameters over HTTP ---------------------------------------------------------------
class Boom:
    """Unpickling this would create a marker file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def code_running_checkpoint(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": Boom(marker)}, str(path))
    return path


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(bridge: Bridge,
                                                                          tmp_path: Path):
    marker = tmp_path / "code-ran"
    px = np.full((32, 32, 3), 128, np.uint8)
    mask = png_bytes(np.pad(np.full((8, 8), 255, np.uint8), 12))
    for op, name in [("remove", "evil.pth"), ("fill", "evil.ckpt"), ("fill", "lora.ckpt")]:
        path = code_running_checkpoint(tmp_path / name, marker)
        params = {"model": str(path)} if name != "lora.ckpt" else {"loras": [str(path)]}
        r = bridge.submit(op, px.tobytes(), params, mask=mask, raw=raw_layout(px))
        if r.status == 202:
            final = bridge.wait(r.json()["id"], timeout=120)
            assert final["state"] == "failed", final
            error = final["error"]
        else:
            error = r.json()["error"]
        assert error["code"] != "internal_error", (op, name, error)
        assert not marker.exists(), f"{op} {name}: unpickling ran code"
    # pickle itself would have run it: the file really is hostile
    with open(tmp_path / "evil.pth", "rb") as f:
        assert f.read(2) == b"PK"
    assert pickle  # the payload is a real pickle inside torch's zip archive


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
@pytest.mark.parametrize("op,param", [("color-match", "reference"), ("remove", "model"),
                                      ("fill", "model"), ("remove-background", "model"),
                                      ("skin-retouch", "detector")])
@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_special_files_as_file_parameters_are_refused_at_once(bridge: Bridge, tmp_path: Path,
                                                               op: str, param: str, special: str):
    if special == "fifo":
        target = tmp_path / ("x.onnx" if op == "remove-background" else "x.pth")
        os.mkfifo(target)
        value = str(target)
    elif special == "folder":
        value = str(tmp_path)
    else:
        value = special
    px = np.full((32, 32, 3), 128, np.uint8)
    mask = png_bytes(np.pad(np.full((8, 8), 255, np.uint8), 12)) if op in ("remove", "fill") else None
    r = bridge.submit(op, px.tobytes(), {param: value}, mask=mask, raw=raw_layout(px))
    if r.status == 202:
        final = bridge.wait(r.json()["id"], timeout=30)  # a read of /dev/zero would not end
        assert final["state"] == "failed", final
        error = final["error"]
    else:
        assert 400 <= r.status < 500, r.body
        error = r.json()["error"]
    assert error["code"] != "internal_error", error
    assert bridge.alive()


def test_a_reference_path_over_http_is_read_only_and_must_be_an_image(bridge: Bridge, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("a secret that must not come back")
    before = secret.stat().st_mtime_ns
    recipe = f'[[steps]]\nop = "color-match"\nreference = "{secret}"\n'
    r = bridge.post_form("/v1/recipes/run", [("recipe", recipe, None),
                                             ("image", png_bytes(np.zeros((8, 8, 3), np.uint8)),
                                              "image/png")])
    assert 400 <= r.status < 500, r.body
    assert b"a secret" not in r.body
    assert secret.stat().st_mtime_ns == before
    relative = '[[steps]]\nop = "color-match"\nreference = "../../secret.txt"\n'
    r = bridge.post_form("/v1/recipes/run", [("recipe", relative, None),
                                             ("image", png_bytes(np.zeros((8, 8, 3), np.uint8)),
                                              "image/png")])
    assert r.status == 400 and "relative path" in r.json()["error"]["message"]


# -- batch paths ----------------------------------------------------------------------------------
def run_batch_quietly(src: Path, out: Path):
    from bridge.batch.run import run_batch
    from bridge.recipes import parse_recipe

    recipe = parse_recipe('[output]\nformat = "png"\n[[steps]]\nop = "passthrough"\n')
    return run_batch(src, recipe, out, workers=1, report=False)


def test_batch_outputs_never_go_through_a_symlink_out_of_the_output_folder(tmp_path: Path):
    src, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    for d in (src / "set0", out, elsewhere):
        d.mkdir(parents=True)
    (src / "set0" / "a.png").write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))
    (src / "b.png").write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))
    (out / "set0").symlink_to(elsewhere, target_is_directory=True)  # planted in the output
    with pytest.raises(BridgeError, match="outside the output folder"):
        run_batch_quietly(src, out)
    assert list(elsewhere.iterdir()) == []


def test_a_batch_state_folder_linked_out_of_the_output_folder_is_refused_before_use(
        tmp_path: Path):
    src, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    for d in (src, out, elsewhere):
        d.mkdir()
    (src / "a.png").write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))
    (out / ".retouch-batch").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(BridgeError, match="symbolic link out of the output folder"):
        run_batch_quietly(src, out)
    assert list(elsewhere.iterdir()) == []  # no lock file, no journal written through it


def test_batch_inputs_are_regular_files_only(tmp_path: Path):
    src, out, outside = tmp_path / "in", tmp_path / "out", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    good = png_bytes(np.full((4, 4, 3), 7, np.uint8))
    (src / "a.png").write_bytes(good)
    (outside / "o.png").write_bytes(good)
    (src / "dir-link").symlink_to(outside, target_is_directory=True)  # not descended
    (src / "zero.png").symlink_to("/dev/zero")  # would never end
    if hasattr(os, "mkfifo"):
        os.mkfifo(src / "fifo.png")  # would block forever
    summary = run_batch_quietly(src, out)
    assert summary.ok and summary.done == 1
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a.png"]
