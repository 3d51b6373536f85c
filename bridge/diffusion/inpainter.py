"""Run a loaded inpainting pipeline on one working-size crop: variations, progress, cancel, previews."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from bridge.diffusion.loader import LoadedPipeline
from bridge.diffusion.schedulers import make_scheduler
from bridge.imaging.image import Image
from bridge.inpaint.region import WorkingSize
from bridge.ops.base import OpContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FillRequest:
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 25
    guidance: float = 7.5
    strength: float = 1.0
    variations: int = 1
    scheduler: str = "default"
    preview_every: int = 0


class LatentPreview:
    """Cheap previews: a linear map from latents to RGB, fitted on this very image.

    Decoding with the VAE at every preview would cost as much as a step; instead the
    crop, shrunk, is encoded once, and a 4->3 least-squares map from its latents to
    its colours turns any step's latents into a small picture.
    """

    def __init__(self, pipe: Any, rgb: np.ndarray) -> None:
        self._pipe = pipe
        self._rgb = rgb
        self._map: np.ndarray | None = None
        self.failed = False

    def _fit(self) -> np.ndarray:
        import torch

        factor = getattr(self._pipe, "vae_scale_factor", 8)
        h, w = self._rgb.shape[:2]
        shrink = min(1.0, 256 / max(h, w))
        sw, sh = (max(factor, round(w * shrink / factor) * factor),
                  max(factor, round(h * shrink / factor) * factor))
        small = cv2.resize(self._rgb, (sw, sh), interpolation=cv2.INTER_AREA)
        vae = self._pipe.vae
        x = torch.from_numpy(small.transpose(2, 0, 1))[None] * 2 - 1
        with torch.inference_mode():
            latents = vae.encode(x.to(vae.device, vae.dtype)).latent_dist.mean
        latents = latents.float() * vae.config.scaling_factor
        lat = latents[0].permute(1, 2, 0).cpu().numpy()
        target = cv2.resize(small, (lat.shape[1], lat.shape[0]), interpolation=cv2.INTER_AREA)
        features = np.concatenate([lat.reshape(-1, lat.shape[2]), np.ones((lat.shape[0] * lat.shape[1], 1))],
                                  axis=1)
        solution, *_ = np.linalg.lstsq(features, target.reshape(-1, 3), rcond=None)
        if not np.all(np.isfinite(solution)):
            raise ValueError("latent preview fit is not finite")
        return solution.astype(np.float32)

    def __call__(self, latents: Any) -> Image | None:
        if self.failed:
            return None
        try:
            if self._map is None:
                self._map = self._fit()
            lat = latents[0].float().permute(1, 2, 0).cpu().numpy()
            flat = np.concatenate([lat.reshape(-1, lat.shape[2]), np.ones((lat.shape[0] * lat.shape[1], 1),
                                                                          np.float32)], axis=1)
            rgb = np.clip(flat @ self._map, 0, 1).reshape(lat.shape[0], lat.shape[1], 3)
            return Image(np.rint(rgb * 255).astype(np.uint8))
        except Exception as e:  # previews are a nicety; never fail the job for one
            log.warning("previews disabled for this job: %s", e)
            self.failed = True
            return None


class DiffusionInpainter:
    """The `Inpainter` the selection pipeline calls, backed by a diffusers pipeline."""

    def __init__(self, loaded: LoadedPipeline, request: FillRequest, working: WorkingSize) -> None:
        self.loaded = loaded
        self.request = request
        self.working = working
        self.name = f"diffusers-{loaded.family}"
        self.seeds = [request.seed + i for i in range(request.variations)]

    def _callback(self, ctx: OpContext, index: int, preview: LatentPreview | None) -> Any:
        n = self.request.variations
        every = self.request.preview_every

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            total = max(1, int(getattr(pipe, "num_timesteps", 0) or self.request.steps))
            # progress() checks for cancel first: a cancelled job stops between steps.
            ctx.progress((index + (step + 1) / total) / n,
                         f"variation {index + 1}/{n}: step {step + 1}/{total}")
            if preview is not None and every > 0 and (step + 1) % every == 0 and step + 1 < total:
                picture = preview(tensors["latents"])
                if picture is not None:
                    ctx.preview(picture)
            return {}

        return on_step_end

    def fill(self, rgb: np.ndarray, hole: np.ndarray, ctx: OpContext) -> list[np.ndarray]:
        import torch

        req, loaded = self.request, self.loaded
        pipe = loaded.pipe
        scheduler = make_scheduler(req.scheduler, loaded.base_scheduler.config)
        pipe.scheduler = scheduler if scheduler is not None else loaded.base_scheduler
        h, w = rgb.shape[:2]
        image = rgb[None]
        mask = (hole > 0).astype(np.float32)[None, :, :, None]
        preview = LatentPreview(pipe, rgb) if req.preview_every > 0 else None
        fills: list[np.ndarray] = []
        for index, seed in enumerate(self.seeds):
            ctx.progress(index / req.variations, f"variation {index + 1}/{req.variations}")
            # A CPU generator gives the same noise for a seed on every device.
            generator = torch.Generator("cpu").manual_seed(seed)
            out = pipe(
                prompt=req.prompt, negative_prompt=req.negative_prompt or None,
                image=image, mask_image=mask, height=h, width=w,
                num_inference_steps=req.steps, guidance_scale=req.guidance, strength=req.strength,
                generator=generator, output_type="np",
                callback_on_step_end=self._callback(ctx, index, preview),
                callback_on_step_end_tensor_inputs=["latents"],
            )
            result = np.asarray(out.images[0], dtype=np.float32)
            if not np.all(np.isfinite(result)):
                from bridge.errors import ModelError

                raise ModelError("the model produced invalid pixels (NaN); on a GPU in fp16 this "
                                 "usually means a VAE that needs fp32 (try the SDXL fp16-fix VAE)")
            fills.append(np.clip(result, 0.0, 1.0))
        return fills
