"""Identity: returns the input unchanged. Exercises decode, transport and encode end to end."""

from __future__ import annotations

from typing import Any

from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import OpContext, Operation, OpResult, full_layer
from bridge.ops.params import Param, ParamSchema


def run(image: Image, mask: Mask | None, params: dict[str, Any], ctx: OpContext) -> OpResult:
    # A delay lets tests and clients watch progress and cancel a real running job.
    steps = max(1, round(params["delay_s"] * 20))
    if params["delay_s"] > 0:
        import time

        for i in range(steps):
            ctx.progress(i / steps, "waiting")
            time.sleep(params["delay_s"] / steps)
    ctx.progress(1.0, "done")
    return OpResult([full_layer("image", image)], image.extent)


OPERATION = Operation(
    name="passthrough",
    title="Passthrough",
    description="Returns the image unchanged (for testing the whole path).",
    params=ParamSchema((
        Param("delay_s", float, 0.0, "seconds to spend, in progress steps", minimum=0, maximum=600),
    )),
    run=run,
    mask="optional",
)
