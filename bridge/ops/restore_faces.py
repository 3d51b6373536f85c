"""Restore faces: every face found, restored by a face model and pasted back softly.

Steps: YuNet finds the faces (on a downscaled copy of large images, coordinates mapped
back: bridge.faces.detect); faces below `min_face` pixels are left alone and at most
`max_faces` are restored, largest first; each face is aligned to the FFHQ 512 template
by the least-squares similarity of its five landmarks (bridge.faces.align), restored by
the face model (bridge.faces.restore), warped back with the inverse similarity through
a feathered mask drawn in face space (bridge.faces.paste), at `blend` strength.

`model`: "auto" picks the best installed face model (GFPGAN v1.4, then CodeFormer, then
RestoreFormer, then models the user imported); a registry id picks that one. Without an
installed face model (or without the YuNet detector) the job is refused when it is
submitted (409 model_missing) with the commands that get one; an id that is no face
model is refused at once as well (400). `fidelity` (0..1) is CodeFormer's weight: 0
restores the most, 1 stays closest to the input; other models have none (an explicit
non-CodeFormer model with `fidelity` is an error, "auto" only warns). `seed` fixes
GFPGAN's sampled noise (the other models sample nothing): the same seed gives the same
pixels.

Result: one layer, "restored faces", placed over the union of the faces' footprints
(not the whole document): the restored pixels where a face was pasted, the original
ones elsewhere, the alpha channel unchanged, and the coverage as the layer mask. Through
that mask the document is changed only inside the faces: every pixel outside them is
bit-identical. 16-bit images are restored from their 16-bit values and stay 16-bit.
The metadata lists every face found (box, five landmarks, score, and whether it was
restored) and the changed region. With no face to restore, the image comes back
unchanged as a full layer with a warning.

Upscaling: this operation never changes the document size, so it declares
`resizes=False` and the panel places its layer in the document. Restoring faces on an
image upscaled with a super-resolution model is the separate operation
`restore-faces-upscale` (`resizes=True`, a new document), which shares this module's
parameters and code.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import InvalidParams
from bridge.faces.detect import YUNET_ID, Face, detect_faces, resolve_detector
from bridge.faces.paste import PastedFace, merge
from bridge.faces.restore import FIDELITY_ARCHS, SAMPLING_ARCHS, FaceModel, restore_face
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import Layer, OpContext, Operation, OpResult, full_layer
from bridge.ops.params import Param, ParamSchema

TASK = "restore-faces"
LAYER_NAME = "restored faces"

FACE_PARAMS = (
    Param("model", str, "auto", "'auto' (best installed face model) or a model id such as "
          "GFPGANv1.4, CodeFormer or RestoreFormer", pattern=r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"),
    Param("fidelity", float, None, "CodeFormer only: 0 restores the most, 1 stays closest to "
          "the input (default 0.5)", minimum=0, maximum=1, nullable=True),
    Param("blend", float, 1.0, "how much of the restored faces to apply", minimum=0, maximum=1),
    Param("min_face", int, 16, "leave faces smaller than this many pixels (box side) alone",
          minimum=1, maximum=10000),
    Param("max_faces", int, 20, "restore at most this many faces, largest first",
          minimum=1, maximum=200),
    Param("min_face_score", float, 0.8, "detection confidence needed", minimum=0.1, maximum=1.0),
    Param("seed", int, 0, "seed of the noise GFPGAN samples (same seed, same result)",
          minimum=0, maximum=2**31 - 1),
)


# -- models -------------------------------------------------------------------------
def resolve_model(params: dict[str, Any], manager: Any) -> Any:
    """The face model's registry entry, installed; InvalidParams / ModelMissing saying why not."""
    name = params["model"]
    if name == "auto":
        return manager.installed_for(TASK, "face restoration model")[0]
    entry = manager.task_entry(name, TASK, "face restoration model", extra=("auto",))
    if params["fidelity"] is not None and entry.architecture not in FIDELITY_ARCHS:
        raise InvalidParams(f"model '{entry.id}' has no fidelity setting; CodeFormer has one",
                            param="fidelity")
    return entry


def check(params: dict[str, Any], manager: Any) -> None:
    """At submission: the face model and the detector are there."""
    resolve_model(params, manager)
    manager.require(YUNET_ID)


# -- faces --------------------------------------------------------------------------
def find_faces(image: Image, params: dict[str, Any], ctx: OpContext) -> tuple[list[Face], list[Face]]:
    """(faces to restore, all faces found), largest first."""
    detector = resolve_detector(ctx)
    found = detect_faces(image.pixels, detector, min_score=params["min_face_score"])
    big = [f for f in found if max(f.width, f.height) >= params["min_face"]]
    return big[: params["max_faces"]], found


def face_report(found: list[Face], chosen: list[Face], scale: float = 1.0) -> list[dict[str, Any]]:
    picked = {id(f) for f in chosen}
    return [{**(f.scaled(scale) if scale != 1 else f).to_json(), "restored": id(f) in picked}
            for f in found]


def load_face_model(entry: Any, params: dict[str, Any], ctx: OpContext,
                    meta: dict[str, Any]) -> FaceModel:
    loaded = ctx.models.load(entry.id)
    model = FaceModel(loaded, params["fidelity"], params["seed"])
    if params["fidelity"] is not None and model.fidelity is None:
        ctx.warn(f"{entry.id} has no fidelity setting: 'fidelity' was ignored")
    if entry.non_commercial:
        ctx.warn(f"{entry.id} is licensed for non-commercial use only ({entry.license})")
    meta.update({"model": entry.id, "architecture": model.architecture,
                 "fidelity": model.fidelity, "seed": params["seed"],
                 "sampled": model.architecture in SAMPLING_ARCHS,
                 "device": str(loaded.device), "precision": loaded.precision})
    return model


def restore_all(image: Image, faces: list[Face], model: FaceModel, params: dict[str, Any],
                ctx: OpContext, start: float, end: float, out_scale: int = 1) -> list[PastedFace]:
    pasted: list[PastedFace] = []
    if params["blend"] <= 0:
        return pasted  # nothing would show: no forward
    for i, face in enumerate(faces):
        ctx.progress(start + (end - start) * i / len(faces), f"restoring face {i + 1} of {len(faces)}")
        done = restore_face(image.color, face, model, i, blend=params["blend"], out_scale=out_scale)
        if done is not None:
            pasted.append(done)
    return pasted


# -- the operation ------------------------------------------------------------------
def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    entry = resolve_model(params, ctx.models)
    ctx.progress(0.02, "finding faces")
    faces, found = find_faces(image, params, ctx)
    meta: dict[str, Any] = {"requested_model": params["model"], "blend": params["blend"]}
    pasted: list[PastedFace] = []
    if faces:
        ctx.progress(0.08, f"loading {entry.id}")
        model = load_face_model(entry, params, ctx, meta)
        pasted = restore_all(image, faces, model, params, ctx, 0.12, 0.95)
    meta["faces"] = face_report(found, faces)
    if not pasted:
        meta["region"] = None
        ctx.warn("no face to restore: the image is unchanged" if not found else
                 "no face was restored (all below min_face, or blend 0): the image is unchanged")
        ctx.progress(1.0, "done")
        return OpResult([full_layer(LAYER_NAME, image)], image.extent, meta)
    bounds, pixels, coverage = merge(image.pixels, pasted)
    meta["region"] = [bounds.x, bounds.y, bounds.width, bounds.height]
    ctx.progress(1.0, "done")
    return OpResult([Layer(LAYER_NAME, image.with_pixels(pixels), bounds, coverage)],
                    image.extent, meta)


OPERATION = Operation(
    name="restore-faces",
    title="Restore faces",
    description="Find every face and restore it with GFPGAN, CodeFormer or RestoreFormer; "
                "a layer over the faces with a soft mask.",
    params=ParamSchema(FACE_PARAMS),
    run=run,
    check=check,
    models=("GFPGANv1.4", "CodeFormer", "RestoreFormer", "yunet"),
)
