"""XMP and IPTC checked against ImageMagick (/usr/bin), a reader and writer independent of ours.

ImageMagick 6 reads IPTC from PNG, TIFF and JPEG and XMP from TIFF and JPEG (not from
a PNG iTXt, and its WebP XMP reading is broken), and writes all of them in its own way.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bridge.imaging import codecs, irb
from bridge.imaging.image import Image
from tests.imaging.helpers import (
    CAPTION,
    COPYRIGHT,
    KEYWORDS,
    iptc_record,
    lightroom_xmp,
    photoshop_resources,
    quadrant_pattern,
)

CONVERT = Path("/usr/bin/convert")
IDENTIFY = Path("/usr/bin/identify")
pytestmark = pytest.mark.skipif(not (CONVERT.exists() and IDENTIFY.exists()),
                                reason="ImageMagick is not installed")

XMP = lightroom_xmp(1)
IPTC = iptc_record()
SUFFIX = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}


def magick(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout


def written(tmp_path: Path, fmt: str) -> Path:
    image = Image(quadrant_pattern(16, 24), xmp=XMP, iptc=IPTC,
                  photoshop_resources=photoshop_resources())
    return codecs.write_image(image, tmp_path / f"ours{SUFFIX[fmt]}")


@pytest.mark.parametrize("fmt", ["png", "tiff", "jpeg"])
def test_imagemagick_reads_our_iptc(tmp_path: Path, fmt: str) -> None:
    path = written(tmp_path, fmt)
    out = magick(IDENTIFY, "-format", "%[IPTC:2:25]\n%[IPTC:2:120]\n%[IPTC:2:116]\n", path)
    keywords, caption, rights = out.splitlines()
    assert keywords.split(";") == KEYWORDS
    assert (caption, rights) == (CAPTION, COPYRIGHT)


@pytest.mark.parametrize("fmt", ["tiff", "jpeg"])
def test_imagemagick_reads_our_xmp(tmp_path: Path, fmt: str) -> None:
    out = magick(IDENTIFY, "-verbose", written(tmp_path, fmt))
    assert re.search(r"Profile-xmp: (\d+) bytes", out).group(1) == str(len(XMP))


@pytest.mark.parametrize("source_fmt", ["jpeg", "tiff", "png"])
@pytest.mark.parametrize("target", [".png", ".tif", ".jpg"])
def test_we_read_what_imagemagick_writes(tmp_path: Path, source_fmt: str, target: str) -> None:
    # ImageMagick 6 writes XMP into PNG as a raw profile, and IPTC into TIFF with a length
    # cut to a quarter (we then read the copy in the Photoshop resources).
    source = written(tmp_path, source_fmt)
    converted = tmp_path / f"theirs{target}"
    magick(CONVERT, source, converted)
    out = codecs.read_image(converted)
    if source_fmt != "png":  # it does not read XMP from a PNG's iTXt chunk
        assert out.xmp == XMP
    if source_fmt == "tiff":
        # It copies the zero bytes that pad a TIFF's IPTC tag to whole LONGs along, and
        # sets the resolution resource from the TIFF's resolution tags.
        assert out.iptc[: len(IPTC)] == IPTC and not any(out.iptc[len(IPTC):])
        assert resources(out.photoshop_resources, but=0x03ED) == resources(
            photoshop_resources(), but=0x03ED)
    else:
        assert out.iptc == IPTC
        assert out.photoshop_resources == photoshop_resources()


def resources(blob: bytes | None, but: int) -> dict[int, bytes]:
    return {r.id: r.data for r in irb.resources(blob or b"") if r.id != but}
