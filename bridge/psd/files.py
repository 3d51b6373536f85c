"""Files around a PSD job: atomic writes, backups, selection masks, TIFF export.

`read_mask_file` and `write_tiff` are small stand-ins until
`bridge.imaging.codecs` (read_image / write_image) is on main; switch to those then.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bridge.errors import InvalidInput, UnsupportedFormat
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask, to_uint8_coverage


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(dst: Path, write: Callable[[BinaryIO], None], *,
                 mode_from: Path | None = None,
                 before_replace: Callable[[], None] | None = None) -> None:
    """Write through a temporary file in dst's folder, then rename over dst.

    Readers see the old file or the new one, never half of either; on any
    failure (cancellation included) the temporary file is removed and dst is
    untouched. `before_replace` runs once the new bytes are safely on disk.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with open(tmp, "wb") as f:  # by name: some writers (tifffile) want f.name
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; give it what the input had, or a normal file's mode.
        mode = stat.S_IMODE(mode_from.stat().st_mode) if mode_from else _default_mode()
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def backup_path(path: Path) -> Path:
    """NAME.psd.bak, or NAME.psd.bak.2, .3 ...: an earlier backup is never overwritten."""
    candidate = path.with_name(path.name + ".bak")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak.{n}")
        n += 1
    return candidate


def make_backup(path: Path) -> Path:
    """Keep the current file under a backup name (a hard link when the disk allows)."""
    target = backup_path(path)
    try:
        os.link(path, target)  # instant, and the rename that follows leaves it intact
    except OSError:
        shutil.copy2(path, target)
    return target


def read_mask_file(path: Path, extent: Extent) -> Mask:
    """A selection from a grey image of the document's size (8- or 16-bit; white = selected)."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as im:
            im.load()
            if im.mode.startswith("I"):  # 16-bit grey (PIL may open it as 32-bit "I")
                data = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
            else:  # 8-bit grey, 1-bit, or colour taken as its luminance; alpha is ignored
                data = np.asarray(im.convert("L"))
    except UnidentifiedImageError as e:
        raise UnsupportedFormat(f"{path.name} is not an image the mask reader knows") from e
    height, width = data.shape[:2]
    if (width, height) != (extent.width, extent.height):
        raise InvalidInput(
            f"mask {path.name} is {width}x{height}; it must match the document, {extent}"
        )
    return Mask.from_array(to_uint8_coverage(data))


def write_tiff(image: Image, path: Path) -> None:
    """Full-depth TIFF with straight alpha and the ICC profile, written atomically."""
    import tifffile

    if path.suffix.lower() not in (".tif", ".tiff"):
        raise UnsupportedFormat(f"export writes TIFF files (.tif, .tiff), not '{path.suffix}'")
    pixels = image.pixels if image.channels > 1 else image.pixels[:, :, 0]
    options: dict[str, object] = {
        "photometric": "rgb" if image.color_channels == 3 else "minisblack",
        "compression": "zlib",
        "predictor": True,
    }
    if image.has_alpha:
        options["extrasamples"] = ["unassalpha"]
    if image.icc:
        options["iccprofile"] = image.icc
    atomic_write(path, lambda f: tifffile.imwrite(f, pixels, **options))
