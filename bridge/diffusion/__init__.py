"""Stable Diffusion inpainting through diffusers, without ever downloading at run time.

`source` finds the files (a local diffusers folder, a single-file checkpoint with
the configs it needs, a hub id already in the local Hugging Face cache, or a
registry id through the model manager); `loader` builds and caches the pipeline
on the right device and precision; `schedulers` and `lora` adjust it per job;
`inpainter` runs it step by step with progress, cancel and previews.
"""
