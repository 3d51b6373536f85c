"""Restore faces on an upscaled image: the background by a super-resolution model, the
faces by a face model, both at the new size. A new document (`resizes=True`).

Why a second operation: `resizes` is declared per operation (the panel opens a new
document for resizing operations and places layers in the document for the others;
PSD apply does the same), so `restore-faces` cannot sometimes change the size.

Steps: the faces are found on the input (as `restore-faces` does); the whole image is
upscaled by `scale` (2 or 4) with the `upscale` operation itself (`upscaler`: "auto",
"lanczos" or a super-resolution model id; tiled, seamless, 16-bit safe, alpha
resampled); each face is restored from the *input's* pixels (the model sees the real
face, not super-resolution guesses) and pasted into the upscaled image with the
alignment scaled to it, through the same feathered mask (`blend`).

Result layers: "image", the whole upscaled document with the faces pasted (the panel
opens it as the new document); "faces", hidden, over the union of the faces'
footprints in the new document: the restored faces with their coverage as the layer
mask (the changed region). The metadata lists the faces in the new document's
coordinates and what `upscale` reported.
"""

from __future__ import annotations

from typing import Any

from bridge.faces.paste import composite, merge
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops import restore_faces as rf
from bridge.ops import upscale
from bridge.ops.base import Layer, OpContext, Operation, OpResult, full_layer
from bridge.ops.params import Param, ParamSchema
from bridge.ops.registry import run_operation


def _upscale_params(params: dict[str, Any]) -> dict[str, Any]:
    return {"scale": float(params["scale"]), "model": params["upscaler"], "tile": params["tile"]}


def check(params: dict[str, Any], manager: Any) -> None:
    rf.check(params, manager)
    if params["upscaler"] != "lanczos":
        upscale.resolve_model({**_upscale_params(params), "denoise": None}, manager)


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    scale = params["scale"]
    target = image.extent.scaled(scale)
    ctx.check_output_size(target.width, target.height)
    entry = rf.resolve_model(params, ctx.models)
    ctx.progress(0.01, "finding faces")
    faces, found = rf.find_faces(image, params, ctx)
    meta: dict[str, Any] = {"requested_model": params["model"], "blend": params["blend"],
                            "scale": scale}
    share = 0.5 if faces else 0.95
    up = run_operation("upscale", image, None, _upscale_params(params), ctx.sub(0.03, 0.03 + share))
    out = up.primary.image
    meta["upscale"] = {k: up.metadata[k] for k in ("model", "tiles", "device", "precision")
                       if k in up.metadata}
    layers = [full_layer("image", out)]
    if faces:
        ctx.progress(0.55, f"loading {entry.id}")
        model = rf.load_face_model(entry, params, ctx, meta)
        pasted = rf.restore_all(image, faces, model, params, ctx, 0.58, 0.97, out_scale=scale)
        if pasted:
            bounds, pixels, coverage = merge(out.pixels, pasted)
            composite(out.pixels, bounds, pixels, coverage)
            meta["region"] = [bounds.x, bounds.y, bounds.width, bounds.height]
            layers.append(Layer("faces", out.with_pixels(pixels), bounds, coverage, visible=False))
    meta["faces"] = rf.face_report(found, faces, scale)
    if len(layers) == 1:
        meta["region"] = None
        ctx.warn("no face to restore: the image was only upscaled")
    ctx.progress(1.0, "done")
    return OpResult(layers, target, meta)


OPERATION = Operation(
    name="restore-faces-upscale",
    title="Restore faces and upscale",
    description="Upscale the image with a super-resolution model and restore every face at "
                "the new size; a new document.",
    params=ParamSchema((
        Param("scale", int, 2, "output size as a multiple of the input", choices=(2, 4)),
        Param("upscaler", str, "auto", "'auto' (best installed super-resolution model, else "
              "Lanczos), 'lanczos', or a model id such as RealESRGAN_x4plus",
              pattern=r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"),
        Param("tile", int, 0, "upscale tile size in input pixels; 0 sizes tiles from free memory",
              minimum=0, maximum=4096),
        *rf.FACE_PARAMS,
    )),
    run=run,
    check=check,
    resizes=True,
    models=("GFPGANv1.4", "CodeFormer", "RestoreFormer", "yunet", "RealESRGAN_x4plus",
            "RealESRGAN_x2plus"),
)
