"""Pulling diffusers folders (sd15-inpainting, sdxl-inpainting) from a local imitation of the
Hugging Face Hub, then filling with them through the path users hit; resume, checksum
failures, offline mode, cancellation, verify / rm / import of folders, the CLI and the
server's pull endpoint. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import load_settings
from bridge.errors import Cancelled, InvalidInput, ModelMissing, NotFound
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.models.download import ChecksumMismatch, DownloadError
from bridge.models.hub import HubError
from bridge.models.manager import ModelManager
from bridge.models.registry import Registry, builtin_registry
from bridge.ops.base import CancelToken, OpContext
from bridge.ops.registry import run_operation
from tests.inpaint.support import block_network, cached_model
from tests.inpaint.tiny import build_sd15_inpaint, build_sdxl_inpaint, photo_like
from tests.models.hub_layouts import (
    SD15_NEEDED,
    SDXL_NEEDED,
    needed_files,
    sd15_hub_layout,
    sdxl_hub_layout,
)
from tests.models.hub_server import HubServer

SD15 = "sd15-inpainting"
SDXL = "sdxl-inpainting"
FAST = {"steps": 2, "working_size": 128, "seed": 7, "preview_every": 0}
UNET16 = "unet/diffusion_pytorch_model.fp16.safetensors"
PINNED = builtin_registry().get(SD15).hub_revision


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every test here: no connection beyond loopback, and proof that none was tried."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("RB_OFFLINE", raising=False)
    guard = block_network(monkeypatch)
    attempts = next(guard)
    yield attempts
    assert attempts == []


@pytest.fixture(scope="module")
def sd15_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pipeline = cached_model(tmp_path_factory, "sd15-inpaint", build_sd15_inpaint)
    return cached_model(tmp_path_factory, "sd15-hub-layout",
                        lambda target: sd15_hub_layout(pipeline, target))


@pytest.fixture(scope="module")
def sdxl_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pipeline = cached_model(tmp_path_factory, "sdxl-inpaint", build_sdxl_inpaint)
    return cached_model(tmp_path_factory, "sdxl-hub-layout",
                        lambda target: sdxl_hub_layout(pipeline, target))


@pytest.fixture
def hub(sd15_layout: Path) -> Iterator[HubServer]:
    """The Hub imitation serving SD 1.5 inpainting's repository at the registry's commit."""
    server = HubServer()
    entry = builtin_registry().get(SD15)
    server.repo(entry.hub_repo, commit=entry.hub_revision).add_folder(sd15_layout)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def served_registry(endpoint: str | None, **changes: dict) -> Registry:
    """The built-in registry, the fill entries asking `endpoint` (None: HF_ENDPOINT decides)."""
    entries = []
    for e in builtin_registry():
        if e.hub_repo is not None:
            extra = {**e.extra, **changes.get(e.id, {})}
            if endpoint is not None:
                extra["hub_endpoint"] = endpoint
            e = dataclasses.replace(e, extra=extra)
        entries.append(e)
    return Registry(entries)


def manager(hub: HubServer | None, **changes: dict) -> ModelManager:
    m = ModelManager(load_settings(), served_registry(hub.endpoint if hub else None, **changes))
    m.retry_backoff_s = 0.0
    return m


def contents(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def fill(m: ModelManager, model: str | None = None) -> dict:
    params = {**FAST, **({"model": model} if model else {})}
    result = run_operation("fill", Image(photo_like(96, 96)), Mask.rectangle(Bounds(30, 30, 30, 30)),
                           params, OpContext(models=m))
    layer = result.primary
    assert layer.image.pixels.shape[2] == 3 and layer.mask is not None and layer.mask.max() == 255
    return result.metadata


# -- pull, then fill ---------------------------------------------------------------------
def test_pull_installs_only_what_the_pipeline_needs_and_fill_uses_it(
        hub: HubServer, sd15_layout: Path) -> None:
    m = manager(hub)
    seen: list[tuple[int, int | None]] = []
    states: list[str] = []

    def progress(received: int, total: int | None) -> None:
        seen.append((received, total))
        states.append(m.state(SD15)["state"])

    folder = m.pull(SD15, progress=progress)
    wanted = needed_files(sd15_layout, SD15_NEEDED)
    assert folder == m.models_dir / SD15 and contents(folder) == wanted
    for rel in wanted:  # byte for byte what the repository holds
        assert (folder / rel).read_bytes() == (sd15_layout / rel).read_bytes(), rel
    # Nothing else was fetched: no pickles, no safety checker, no ONNX, no checkpoints.
    repo = builtin_registry().get(SD15).hub_repo
    assert sorted(hub.downloads(repo)) == sorted(wanted)
    assert len([p for p, _ in hub.requests if "/tree/" in p]) > 1  # followed the pages
    # Progress: bytes over all files, rising to the total, while the state said so.
    total = sum((sd15_layout / rel).stat().st_size for rel in wanted)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)
    assert set(states) == {"downloading"}
    state = m.state(SD15)
    assert state["state"] == "installed" and state["source"] == "download" and state["official"]
    assert state["size"] == total and state["revision"] == builtin_registry().get(SD15).hub_revision
    assert sorted(os.listdir(m.models_dir)) == ["manifest.json", SD15]  # no staging left
    assert m.verify(SD15)
    # fill's default model, found through the manager as users' requests find it.
    meta = fill(m)
    assert meta["model"] == SD15 and meta["family"] == "sd15"
    # A second pull is a no-op.
    before = len(hub.requests)
    assert m.pull(SD15) == folder and len(hub.requests) == before


def test_sdxl_pull_and_fill(sdxl_layout: Path) -> None:
    server = HubServer()
    entry = builtin_registry().get(SDXL)
    server.repo(entry.hub_repo, commit=entry.hub_revision).add_folder(sdxl_layout)
    server.start()
    try:
        m = manager(server)
        folder = m.pull(SDXL)
        assert contents(folder) == needed_files(sdxl_layout, SDXL_NEEDED)
        meta = fill(m, SDXL)
        assert meta["model"] == SDXL and meta["family"] == "sdxl"
    finally:
        server.stop()


def test_hf_endpoint_names_a_mirror_when_the_registry_names_none(
        hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    m = manager(None)
    assert m.entry(SD15).hub_endpoint is None
    assert (m.pull(SD15) / "model_index.json").is_file()


def test_a_branch_revision_is_resolved_and_the_commit_recorded(hub: HubServer) -> None:
    m = manager(hub, **{SD15: {"hub_revision": "main"}})
    m.pull(SD15)
    commit = builtin_registry().get(SD15).hub_revision
    assert m.state(SD15)["revision"] == commit
    assert any(p.endswith("/revision/main") for p, _ in hub.requests)
    # Every file came from that commit, never from the moving branch name.
    assert all("/resolve/main/" not in p and "/tree/main" not in p for p, _ in hub.requests)


# -- interruptions and failures -----------------------------------------------------------
def test_resume_after_a_dropped_connection(hub: HubServer, sd15_layout: Path) -> None:
    repo_id = builtin_registry().get(SD15).hub_repo
    unet = hub.repos[repo_id].files[UNET16]
    cut = len(unet.data) // 2
    unet.drop_after, unet.drops_left = cut, 1
    m = manager(hub)
    m.download_retries = 0
    with pytest.raises(DownloadError, match="pull again to resume"):
        m.pull(SD15)
    state = m.state(SD15)
    assert state["state"] == "missing" and state["partial"] >= cut
    assert not (m.models_dir / SD15).exists()  # never a half-made model under its name
    first = hub.downloads(repo_id)
    m.pull(SD15)
    assert contents(m.models_dir / SD15) == needed_files(sd15_layout, SD15_NEEDED)
    # The unet's second request asked for the rest only; files finished before the drop
    # (model_index.json, the text encoder, ...) were not fetched again.
    assert hub.ranges(repo_id, UNET16) == [None, f"bytes={cut}-"]
    again = hub.downloads(repo_id)[len(first):]
    assert UNET16 in again and not set(again) & (set(first) - {UNET16})
    assert m.verify(SD15) and sorted(os.listdir(m.models_dir)) == ["manifest.json", SD15]


def test_retries_resume_within_one_pull(hub: HubServer) -> None:
    repo_id = builtin_registry().get(SD15).hub_repo
    unet = hub.repos[repo_id].files[UNET16]
    unet.drop_after, unet.drops_left = 1000, 2
    m = manager(hub)
    m.pull(SD15)
    assert hub.ranges(repo_id, UNET16) == [None, "bytes=1000-", "bytes=1000-"]
    assert m.verify(SD15)


@pytest.mark.parametrize("path", [UNET16, "vae/config.json"])
def test_a_file_that_is_not_the_listed_one_fails_and_leaves_nothing(
        hub: HubServer, path: str) -> None:
    repo_id = builtin_registry().get(SD15).hub_repo
    served = hub.repos[repo_id].files[path]
    served.data = served.data[:-1] + bytes([served.data[-1] ^ 1])  # same size, other bytes
    m = manager(hub)
    with pytest.raises(ChecksumMismatch, match="checksum mismatch") as info:
        m.pull(SD15)
    assert path in info.value.message and "deleted" in info.value.message
    assert os.listdir(m.models_dir) == []
    state = m.state(SD15)
    assert state["state"] == "missing" and "partial" not in state


def test_offline_refuses_before_any_request(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_OFFLINE", "1")
    m = manager(hub)
    with pytest.raises(ModelMissing) as info:
        m.pull(SD15)
    message = info.value.message
    assert "offline" in message and f"models pull {SD15}" in message
    assert f"models import PATH --as {SD15}" in message
    assert hub.requests == []


def test_cancel_leaves_nothing(hub: HubServer) -> None:
    m = manager(hub)
    token = CancelToken()

    def progress(received: int, total: int | None) -> None:
        if received > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        m.pull(SD15, progress=progress, cancel=token)
    assert os.listdir(m.models_dir) == []
    state = m.state(SD15)
    assert state["state"] == "missing" and "partial" not in state


def test_a_component_with_only_pickled_weights_is_refused(
        hub: HubServer, sd15_layout: Path) -> None:
    repo = hub.repo("test-org/pickled-unet", commit=PINNED)
    repo.add_folder(sd15_layout)
    for name in list(repo.listed):
        if name.startswith("unet/") and name.endswith(".safetensors"):
            del repo.listed[name], repo.files[name]
    m = manager(hub, **{SD15: {"hub_repo": "test-org/pickled-unet"}})
    with pytest.raises(HubError, match=r"'unet' has no safetensors weights.*never loaded"):
        m.pull(SD15)
    assert hub.downloads("test-org/pickled-unet") == ["model_index.json"]
    assert os.listdir(m.models_dir) == []


def test_a_listing_path_outside_the_folder_is_refused(
        hub: HubServer, sd15_layout: Path, tmp_path: Path) -> None:
    repo = hub.repo("test-org/escape", commit=PINNED)
    repo.add_folder(sd15_layout)
    repo.add("unet/../../escape.json", b"{}")
    m = manager(hub, **{SD15: {"hub_repo": "test-org/escape"}})
    with pytest.raises(HubError, match="unsafe path"):
        m.pull(SD15)
    assert hub.downloads("test-org/escape") == []
    assert os.listdir(m.models_dir) == []
    assert not list(m.models_dir.parent.rglob("escape.json"))


def test_unknown_revision_is_a_clear_error(hub: HubServer) -> None:
    m = manager(hub, **{SD15: {"hub_revision": "0" * 40}})
    with pytest.raises(DownloadError, match="HTTP 404"):
        m.pull(SD15)
    assert os.listdir(m.models_dir) == []


def test_fill_entries_pin_a_commit_and_prefer_fp16() -> None:
    import re

    for model_id in (SD15, SDXL):
        entry = builtin_registry().get(model_id)
        assert entry.downloadable and entry.url is None and entry.has_official_checksum
        assert re.fullmatch(r"[0-9a-f]{40}", entry.hub_revision) and entry.hub_variant == "fp16"
        assert entry.suffixes == (".safetensors", ".ckpt")
    with pytest.raises(ValueError, match="hub_repo"):
        dataclasses.replace(builtin_registry().get(SD15), extra={"hub_repo": "no-slash"})


def test_file_choice_handles_shards_variants_and_leftovers() -> None:
    from bridge.models.hub import RepoFile, select_files

    names = [
        "model_index.json", ".gitattributes", "v1-inpainting.ckpt",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors.index.json",
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.bin.index.json", "unet/diffusion_pytorch_model-00001-of-00002.bin",
        "unet/diffusion_pytorch_model.non_ema.safetensors", "unet/diffusion_flax_model.msgpack",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
        "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/.DS_Store",
        "scheduler/scheduler_config.json", "safety_checker/model.safetensors",
        "onnx/unet/model.onnx", "logs/run-1/events.json",
    ]
    index = {"_class_name": "StableDiffusionInpaintPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"],
             "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
             "image_encoder": [None, None]}
    files = [RepoFile(n, 1) for n in names]
    chosen, variants = select_files(files, index, "fp16")
    assert {f.path for f in chosen} == {
        "model_index.json", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",  # no fp16 copy: plain
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
        "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"}
    assert variants["unet"] == "fp16" and variants["vae"] is None
    # Without a preferred variant: plain shards and their index; fp16 only where nothing else.
    chosen, variants = select_files(files, index, None)
    unet = {f.path for f in chosen if f.path.startswith("unet/")}
    assert unet == {"unet/config.json", "unet/diffusion_pytorch_model.safetensors.index.json",
                    "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
                    "unet/diffusion_pytorch_model-00002-of-00002.safetensors"}
    assert variants["text_encoder"] == "fp16"
    with pytest.raises(HubError, match="no 'vae' folder"):
        select_files([f for f in files if not f.path.startswith("vae/")], index, "fp16")


# -- verify, rm, import --------------------------------------------------------------------
def test_verify_detects_changed_files_and_rm_removes_the_folder(hub: HubServer) -> None:
    m = manager(hub)
    folder = m.pull(SD15)
    vae = folder / "vae" / "diffusion_pytorch_model.fp16.safetensors"
    data = vae.read_bytes()
    vae.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert m.state(SD15)["state"] == "installed"  # the cheap check sees sizes only
    assert not m.verify(SD15)
    assert m.state(SD15)["state"] == "corrupt"
    m.pull(SD15)  # a corrupt model is pulled again, whole
    assert m.verify(SD15) and m.state(SD15)["state"] == "installed"
    (folder / "unet" / "config.json").unlink()
    assert m.state(SD15)["state"] == "corrupt"  # a file gone is seen at once
    m.remove(SD15)
    assert not folder.exists() and m.state(SD15)["state"] == "missing"
    assert os.listdir(m.models_dir) == ["manifest.json"]
    with pytest.raises(NotFound):
        m.remove(SD15)


def test_a_folder_file_changed_on_disk_is_refused_before_use_and_re_pulled(
        hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No verify: the check before use hashes only files whose mtime moved, finds the
    flipped one, marks the model corrupt; the pull endpoint's path (pull without force)
    downloads it again."""
    from bridge.models import integrity

    hashed: list[str] = []
    real = integrity.hash_file
    monkeypatch.setattr(integrity, "hash_file",
                        lambda p: (hashed.append(Path(p).name), real(p))[1])
    m = manager(hub)
    folder = m.pull(SD15)
    assert m.require(SD15) == folder and hashed == []  # stamped at pull: nothing re-hashed
    unet = folder / UNET16
    data = bytearray(unet.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    st = unet.stat()
    unet.write_bytes(bytes(data))
    os.utime(unet, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert m.state(SD15)["state"] == "installed"  # sizes only, until it is used
    with pytest.raises(ModelMissing, match=r"damaged: unet/diffusion_pytorch_model\.fp16"):
        manager(hub).require(SD15)
    assert hashed == [unet.name]  # one file changed, one file hashed
    state = m.state(SD15)
    assert state["state"] == "corrupt"
    requests = len(hub.requests)
    m.pull(SD15)
    assert len(hub.requests) > requests
    assert m.require(SD15) == folder and m.state(SD15)["state"] == "installed"
    assert hashed == [unet.name]


def test_rm_discards_an_interrupted_pull(hub: HubServer) -> None:
    repo_id = builtin_registry().get(SD15).hub_repo
    unet = hub.repos[repo_id].files[UNET16]
    unet.drop_after, unet.drops_left = 100, 1
    m = manager(hub)
    m.download_retries = 0
    with pytest.raises(DownloadError):
        m.pull(SD15)
    assert m.state(SD15)["partial"] > 0
    m.remove(SD15)
    assert os.listdir(m.models_dir) == ["manifest.json"]
    assert "partial" not in m.state(SD15)


def test_import_a_hugging_face_cache_snapshot(sd15_layout: Path, tmp_path: Path) -> None:
    import shutil

    from bridge.diffusion.loader import load_pipeline
    from bridge.diffusion.source import from_registry

    snapshot = (tmp_path / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-inpainting"
                / "snapshots" / ("ab" * 20))
    shutil.copytree(sd15_layout, snapshot)
    m = manager(None)
    dest = m.import_file(snapshot)  # recognised by the repository the cache names
    assert dest == m.models_dir / SD15
    # Plain weights are preferred on import; pickles, ONNX, the safety checker stay behind.
    wanted = {n.replace(".fp16.", ".") for n in needed_files(sd15_layout, SD15_NEEDED)}
    assert contents(dest) == wanted
    state = m.state(SD15)
    assert state["state"] == "installed" and state["source"] == "import"
    assert state["official"] is False and m.verify(SD15)
    loaded = load_pipeline(from_registry(OpContext(models=m), SD15), "cpu")
    assert type(loaded.pipe).__name__ == "StableDiffusionInpaintPipeline"
    assert sorted(os.listdir(m.models_dir)) == ["manifest.json", SD15]


def test_import_folder_checks_and_custom_ids(sd15_layout: Path, sdxl_layout: Path,
                                             tmp_path: Path) -> None:
    from bridge.diffusion.source import from_registry

    m = manager(None)
    with pytest.raises(InvalidInput, match="StableDiffusionXL pipeline, but 'sd15-inpainting'"):
        m.import_file(sdxl_layout, as_id=SD15)
    with pytest.raises(InvalidInput, match="fill model"):
        m.import_file(sdxl_layout, as_id="RealESRGAN_x4plus")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=r"no model_index\.json"):
        m.import_file(tmp_path / "empty")
    assert all(s["state"] == "missing" for s in m.states())
    dest = m.import_file(sdxl_layout, as_id="my-xl-inpaint")
    entry = m.entry("my-xl-inpaint")
    assert entry.custom and entry.task == "fill" and entry.architecture == "StableDiffusionXL"
    assert dest.name == "my-xl-inpaint" and m.state("my-xl-inpaint")["state"] == "installed"
    source = from_registry(OpContext(models=ModelManager(load_settings())), "my-xl-inpaint")
    assert source.family == "sdxl" and source.path == dest  # a new process finds it too
    m.remove("my-xl-inpaint")
    with pytest.raises(NotFound):
        m.entry("my-xl-inpaint")


def test_a_single_checkpoint_replaces_a_folder_and_back(hub: HubServer, sd15_layout: Path,
                                                       tmp_path: Path) -> None:
    from tests.inpaint.ldm_checkpoint import write_sd15_single_file

    m = manager(hub)
    folder = m.pull(SD15)
    checkpoint = write_sd15_single_file(sd15_layout, tmp_path / "inpaint.safetensors")
    with pytest.raises(InvalidInput, match="StableDiffusion checkpoint, but 'sdxl-inpainting'"):
        m.import_file(checkpoint, as_id=SDXL)
    (tmp_path / "junk.safetensors").write_bytes(os.urandom(300))
    with pytest.raises(InvalidInput, match="not a Stable Diffusion checkpoint"):
        m.import_file(tmp_path / "junk.safetensors", as_id=SD15)
    assert m.require(SD15) == folder
    dest = m.import_file(checkpoint, as_id=SD15)
    assert dest.name == "sd15-inpainting.safetensors" and not folder.exists()
    assert m.state(SD15)["state"] == "installed" and m.require(SD15) == dest
    assert m.pull(SD15, force=True) == folder and not dest.exists()
    assert m.require(SD15) == folder and m.verify(SD15)


# -- the CLI and the server -------------------------------------------------------------------
def registry_file(tmp_path: Path, endpoint: str) -> Path:
    data = json.loads((Path(__file__).parents[2] / "bridge/models/registry.json").read_text())
    for model in data["models"]:
        if model.get("hub_repo"):
            model["hub_endpoint"] = endpoint
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(data))
    return path


def test_cli_pull_list_verify_rm(hub: HubServer, tmp_path: Path, capsys,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.cli.main import main

    monkeypatch.setenv("RB_MODEL_REGISTRY", str(registry_file(tmp_path, hub.endpoint)))
    assert main(["models", "pull", SD15]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"installed {SD15}: ") and "no published checksum" not in err
    assert main(["models", "list", "--json"]) == 0
    state = next(s for s in json.loads(capsys.readouterr().out) if s["id"] == SD15)
    assert state["state"] == "installed" and Path(state["path"]).is_dir()
    assert main(["models", "verify", SD15]) == 0
    assert capsys.readouterr().out.startswith(f"ok      {SD15}  (official release")
    assert main(["models", "rm", SD15]) == 0
    assert not Path(state["path"]).exists()


def test_server_pull_emits_progress_until_installed(hub: HubServer, tmp_path: Path) -> None:
    import aiohttp

    from tests.support.server import running_bridge

    env = {"RB_MODEL_REGISTRY": str(registry_file(tmp_path, hub.endpoint)),
           "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}  # only the registry's

    async def pull_and_watch(bridge) -> list[dict]:
        events = []
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{bridge.url}/v1/events?token={bridge.token}") as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(
                None, lambda: bridge.request("POST", f"/v1/models/{SD15}/pull"))
            assert reply.status == 202 and reply.json()["state"] == "downloading"
            async with asyncio.timeout(60):
                while True:
                    event = await ws.receive_json()
                    if event.get("type") == "model-progress" and event.get("model") == SD15:
                        events.append(event)
                        if event["state"] != "downloading":
                            return events

    with running_bridge(tmp_path / "home", env=env) as bridge:
        events = asyncio.run(pull_and_watch(bridge))
        assert events[-1]["state"] == "installed", events[-1]
        downloading = [e for e in events if e["state"] == "downloading"]
        assert downloading and all(e["total"] and e["received"] <= e["total"] for e in downloading)
        models = {s["id"]: s for s in bridge.get("/v1/models").json()["models"]}
        assert models[SD15]["state"] == "installed" and models[SD15]["revision"] == PINNED
        assert bridge.request("POST", f"/v1/models/{SD15}/pull").json()["state"] == "installed"
