"""Shared helpers for the PSD tests: snapshots of every layer, ImageMagick as a second
reader, small PSDs built in code, and a masked test operation."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psd_tools import PSDImage

from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import Layer, OpContext, Operation, OpResult
from bridge.ops.params import Param, ParamSchema
from bridge.psd.layers import entries

IDENTIFY = "/usr/bin/identify"
CONVERT = "/usr/bin/convert"  # /usr/local/bin/convert may be a stand-in without PSD support


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_bytes(layer: Any) -> bytes:
    out = io.BytesIO()
    layer._record.write(out, version=layer._psd.version, encoding="macroman")
    return out.getvalue()


def snapshot(path: Path) -> list[dict[str, Any]]:
    """Everything that must survive an apply, for every layer, top of the panel first."""
    psd = PSDImage.open(path)
    out = []
    for entry in entries(psd):
        la = entry.layer
        r = la._record
        mask = None
        if la.has_mask():
            m = la.mask
            mask = (m.bbox, m.background_color, m.disabled)
        out.append({
            "path": entry.path,
            "name": la.name,
            "kind": la.kind,
            "rect": (r.left, r.top, r.right, r.bottom),
            "opacity": la.opacity,
            "blend_mode": la.blend_mode,
            "visible": la.visible,
            "clipping": la.clipping,
            "mask": mask,
            "id": la.layer_id,
            "record": _sha(record_bytes(la)),
            "channels": [(int(c.compression), _sha(bytes(c.data))) for c in la._channels],
            "pixels": _sha(la.numpy().tobytes()) if la.has_pixels() and la.width else None,
        })
    return out


def without(shot: list[dict[str, Any]], paths: set[str]) -> list[dict[str, Any]]:
    """A snapshot minus the entries we added, with paths as they were before."""
    return [s for s in shot if s["path"] not in paths]


def assert_originals_intact(before: Path, after: Path, added: set[str]) -> None:
    """Every layer of `before` is in `after` as it was; `added` are the new paths."""
    old, new = snapshot(before), snapshot(after)
    kept = without(new, added)
    assert [s["path"] for s in kept] == [s["path"] for s in old]
    for a, b in zip(old, kept, strict=True):
        assert a == b, a["path"]


def resources(path: Path) -> dict[int, bytes]:
    psd = PSDImage.open(path)
    out = {}
    for key, res in psd.image_resources.items():
        buf = io.BytesIO()
        res.write(buf)
        out[int(key)] = buf.getvalue()
    return out


def sections(path: Path) -> dict[str, bytes]:
    """Document-level parts outside the layer list: header, colour mode data, global
    layer mask, document tagged blocks (Lr16/Lr32 hold the layer list itself)."""
    record = PSDImage.open(path)._record
    out = {}
    for name in ("header", "color_mode_data"):
        buf = io.BytesIO()
        getattr(record, name).write(buf)
        out[name] = buf.getvalue()
    info = record.layer_and_mask_information
    if info.global_layer_mask_info is not None:
        buf = io.BytesIO()
        info.global_layer_mask_info.write(buf)
        out["global layer mask"] = buf.getvalue()
    for key, block in (info.tagged_blocks or {}).items():
        if key.name in ("LAYER_16", "LAYER_32"):
            continue
        buf = io.BytesIO()
        block.write(buf, version=record.header.version)
        out[f"tagged block {key.name}"] = buf.getvalue()
    return out


def needs_imagemagick() -> None:
    if not Path(IDENTIFY).exists() or not Path(CONVERT).exists():
        pytest.skip("ImageMagick (/usr/bin/identify, /usr/bin/convert) is not installed")


def im_layers(path: Path) -> list[dict[str, Any]]:
    """ImageMagick's view: [0] the merged image, then pixel layers bottom to top."""
    needs_imagemagick()
    fmt = "%p|%w|%h|%z|%X|%Y|%l\n"
    out = subprocess.run([IDENTIFY, "-format", fmt, str(path)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    rows = []
    for line in out.splitlines():
        p, w, h, z, x, y, label = line.split("|", 6)
        rows.append({"index": int(p), "width": int(w), "height": int(h), "depth": int(z),
                     "x": int(x), "y": int(y), "label": label})
    return rows


def im_pixels(path: Path, index: int, width: int, height: int, depth: int,
              channels: str = "rgba") -> np.ndarray:
    needs_imagemagick()
    raw = subprocess.run(
        [CONVERT, f"{path}[{index}]", "-depth", str(depth), "-endian", "MSB", f"{channels}:-"],
        capture_output=True, check=True, timeout=60).stdout
    dtype = ">u1" if depth == 8 else ">u2"
    count = {"rgba": 4, "rgb": 3, "gray": 1}[channels]
    return np.frombuffer(raw, dtype).reshape(height, width, count).astype(
        np.uint8 if depth == 8 else np.uint16)


def layer_array(layer: Any, depth: int, channel: str | None = None) -> np.ndarray:
    """psd-tools' float read of a layer, back in integers."""
    top = 255 if depth == 8 else 65535
    values = layer.numpy(channel) if channel else layer.numpy()
    return np.rint(values * top).astype(np.uint8 if depth == 8 else np.uint16)


def find(psd: PSDImage, path: str) -> Any:
    hits = [e.layer for e in entries(psd) if e.path == path]
    assert len(hits) == 1, f"{path}: {len(hits)} hits in {[e.path for e in entries(psd)]}"
    return hits[0]


def build_psd(path: Path, *, mode: str = "RGB", depth: int = 8, size: tuple[int, int] = (64, 48),
              psb: bool = False, layers: list[tuple[str, np.ndarray, int, int]] = (),
              seed: int = 0) -> Path:
    """A document with the given pixel layers (name, HxWxC integer array, left, top)."""
    psd = PSDImage.new(mode, size, depth=depth)
    if psb:
        psd._record.header.version = 2
    top = 255 if depth == 8 else 65535
    for name, array, left, top_ in layers:
        psd.create_pixel_layer_from_array(array.astype(np.float32) / top, name=name,
                                          top=top_, left=left)
    psd.save(path)
    return path


def random_layer(rng: np.random.Generator, h: int, w: int, c: int, depth: int,
                 alpha: bool = True) -> np.ndarray:
    dtype = np.uint8 if depth == 8 else np.uint16
    top = 255 if depth == 8 else 65535
    pixels = rng.integers(0, top + 1, (h, w, c + (1 if alpha else 0)), dtype=np.int64)
    if alpha:
        pixels[..., -1] = rng.integers(top // 2, top + 1, (h, w))
    return pixels.astype(dtype)


# -- a masked operation, registered only by the tests that use it --------------------
def _invert_inside(image: Image, mask: Mask | None, params: dict[str, Any],
                   ctx: OpContext) -> OpResult:
    """Inverts colour inside the selection's bounds; the selection becomes the layer mask."""
    assert mask is not None
    b = mask.bounds
    patch = image.crop(b).pixels.copy()
    top = 255 if patch.dtype == np.uint8 else 65535
    n = image.color_channels
    patch[:, :, :n] = top - patch[:, :, :n]
    ctx.progress(1.0, "inverted")
    layer = Layer("inverted", image.with_pixels(patch), b, mask=mask.data.copy())
    return OpResult([layer], image.extent, {"inverted": b.as_list()})


INVERT = Operation(
    name="test-invert",
    title="Test Invert",
    description="test only: invert inside the selection",
    params=ParamSchema((Param("seed", int, 0, "recorded in the name"),)),
    run=_invert_inside,
    mask="required",
)


def copy_sample(samples: Path, name: str, tmp: Path) -> Path:
    target = tmp / name
    shutil.copyfile(samples / name, target)
    return target


def sha_file(path: Path) -> str:
    return _sha(path.read_bytes())


def inside(b: Bounds, x: int, y: int) -> bool:
    return b.x <= x < b.x1 and b.y <= y < b.y1
