"""Work that follows the selection: crop around it, run a model at its own size, paste back.

`pipeline.follow_selection` is the whole path, readable top to bottom; `region` plans
the crop and the working size, `colour` matches a fill to its surroundings, `engines`
holds the fill models that are not diffusion (LaMa, OpenCV), `sources` turns a model
parameter into files on disk, and `matte` wraps rembg for background removal.
"""
