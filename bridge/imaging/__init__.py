"""Pure pixels and geometry: the image type, masks, codecs, tiling, compositing."""
