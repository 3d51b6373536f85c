"""Models: what exists (registry), what is installed (manager), how it runs (runtime).

Light to import: nothing here imports torch until a model is loaded.

For an operation that needs a model (restore-faces, denoise, ...)::

    manager = ctx.models                       # a ModelManager (bridge.models.manager)
    entry = manager.installed("denoise")[0]    # best installed model of a task, or
    loaded = manager.load("scunet-real-psnr")  # ModelMissing (HTTP 409, with a hint) if absent
    pad, blend = loaded.context                # tile context for this architecture
    out = np.empty(image.pixels.shape, image.pixels.dtype)
    tile_process(image.color, loaded, loaded.scale, out=out[..., :image.color_channels],
                 tile=params["tile"] or loaded.auto_tile(budget), pad=pad, blend=blend,
                 progress=..., check_cancel=ctx.check_cancelled)

`loaded(tile)` maps float32 HxWxC in [0, 1] to float32 (H*s)x(W*s)xC (fp16 on CUDA where
safe, checked finite, CUDA OOM turned into TileTooLarge for the tiling engine);
`loaded.descriptor.model` is the spandrel torch module for calls with extra arguments
(CodeFormer's fidelity weight). Models that are not spandrel models (the YuNet ONNX
detector) are found with `manager.require("yunet")`, which returns the file's path.
"""
