"""Print resolution in pixels per inch: read from each format's own place, written back there.

`Image.resolution` is (x, y) pixels per inch, or None when the file says nothing
(or gives only an aspect ratio). Where each format keeps it:
- PNG: the pHYs chunk, in whole pixels per metre;
- TIFF: XResolution/YResolution (rationals) with ResolutionUnit inch or cm;
- JPEG: the JFIF header's whole dots per inch or per cm; when JFIF is absent or
  gives only an aspect ratio, the EXIF's XResolution/YResolution/ResolutionUnit;
- WebP: only the EXIF.
Photoshop's ResolutionInfo resource (0x03ED: 16.16 fixed pixels per inch whatever
its display unit) is a last source where a format carries Photoshop's resources.

Which source wins: the format's own place, then the EXIF, then 0x03ED. Where the
own place holds whole numbers (JFIF's dots, pHYs' pixels per metre), a later
exact value (a rational, 16.16 fixed) within one of its steps takes over: JFIF
stores 72.5 ppi as 73, the EXIF beside it as 145/2, and 72.5 is the reading.

Rounding: what the file says, converted to ppi and rounded to 3 places (a
rational 145/2 per inch reads as 72.5, 11811/100 per cm as 299.999, JFIF's 118
dots per cm as 299.72), except PNG's whole pixels per metre, whose conversion
is all grid noise (11811 px/m is 299.9994 ppi): a pHYs value reads as the
shortest decimal, at most 3 places, within one step (0.0254 ppi) of it. Writers
round or cut to the grid (Pillow stores 96 ppi as 3780 px/m, ImageMagick as
3779), so a step either way is noise: 11811 reads as 300, 2854 as 72.5, 3779
as 96. A value PNG cannot hold that closely also goes into the EXIF (below).

Writing: TIFF gets inch rationals with denominators up to 1000, PNG the nearest
whole pixels per metre, JFIF the nearest whole dots per inch. The EXIF's own
resolution tags, when it has them, are set to the same values in place (same
length, every other byte as it was) rather than left alone: they describe this
file's pixels, not the camera's capture, and readers that take them (Windows,
Preview, Pillow when JFIF gives only an aspect ratio) must not print a different
size than readers of the native place. Where the EXIF is the only place that
can hold the value (WebP always; JPEG for a fraction of a dpi; PNG for one finer
than a pixel per metre), the tags are added when it lacks them, or an EXIF
holding only them is made.
A 0x03ED resource among the Photoshop resources gets the same values too (its
display units kept); none is added where there was none.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction

from bridge.imaging import exif as exif_tags
from bridge.imaging import irb

Resolution = tuple[float, float]

X_RESOLUTION, Y_RESOLUTION, RESOLUTION_UNIT = 282, 283, 296
UNIT_NONE, UNIT_INCH, UNIT_CM = 1, 2, 3  # TIFF/EXIF ResolutionUnit
RESOLUTION_INFO = 0x03ED
CM_PER_INCH = 2.54
METRES_PER_INCH = 0.0254
_MAX_DENOMINATOR = 1000
_FIXED = 65536  # 16.16 fixed point


@dataclass(frozen=True)
class Reading:
    """What one source says, exactly converted to ppi, and its storage step in ppi.

    `whole` marks a field of whole numbers on a fixed grid (JFIF, pHYs), which
    cannot hold every value; rationals and 16.16 fixed values can. `snap` marks
    one read as the shortest decimal within a step (pHYs; see the module doc).
    """

    x: float
    y: float
    step_x: float
    step_y: float
    whole: bool = False
    snap: bool = False


def _reading(x: float, y: float, step_x: float, step_y: float, *,
             whole: bool = False, snap: bool = False) -> Reading | None:
    if not all(math.isfinite(v) and v > 0 for v in (x, y, step_x, step_y)):
        return None
    return Reading(x, y, step_x, step_y, whole, snap)


def rounded(ppi: float, step: float | None = None) -> float:
    """`ppi` to 3 places, or with a `step`, the shortest decimal (0-3 places) within it."""
    if step is not None:
        for places in range(3):
            r = round(ppi, places)
            if r > 0 and abs(r - ppi) <= step * (1 + 1e-9):
                return float(r)
    return round(ppi, 3)


def choose(*sources: Reading | None) -> Resolution | None:
    """The resolution from sources in order of authority (see the module doc)."""
    found = [s for s in sources if s is not None]
    if not found:
        return None
    best = found[0]
    if best.whole:
        # A whole-number field gives way to an exact value within one of its steps.
        best = next((o for o in found[1:] if not o.whole
                     and abs(o.x - best.x) <= best.step_x * (1 + 1e-9)
                     and abs(o.y - best.y) <= best.step_y * (1 + 1e-9)), best)
    if best.snap:
        x, y = rounded(best.x, best.step_x), rounded(best.y, best.step_y)
    else:
        x, y = rounded(best.x), rounded(best.y)
    return (x, y) if x > 0 and y > 0 else None  # under 0.0005 ppi is no resolution at all


def transposed(resolution: Resolution | None) -> Resolution | None:
    """For pixels turned a quarter: what was across is now down."""
    return (resolution[1], resolution[0]) if resolution else None


# -- reading each source -------------------------------------------------------------
def from_units(x: tuple[int, int], y: tuple[int, int], unit: int) -> Reading | None:
    """TIFF/EXIF rationals (numerator, denominator) per `unit` (inch or cm; 1 means none)."""
    per_inch = {UNIT_INCH: 1.0, UNIT_CM: CM_PER_INCH}.get(unit)
    if per_inch is None or not x[1] or not y[1]:
        return None
    return _reading(x[0] / x[1] * per_inch, y[0] / y[1] * per_inch,
                    per_inch / x[1], per_inch / y[1])


def from_phys(body: bytes | None) -> Reading | None:
    """A PNG pHYs chunk's body: x and y pixels per unit, unit 1 = metre (0 = aspect only)."""
    if not body or len(body) < 9:
        return None
    x, y, unit = struct.unpack_from(">IIB", body)
    if unit != 1:
        return None
    return _reading(x * METRES_PER_INCH, y * METRES_PER_INCH, METRES_PER_INCH, METRES_PER_INCH,
                    whole=True, snap=True)


def from_jfif(units: int, x: int, y: int) -> Reading | None:
    """JFIF density: units 1 dots per inch, 2 per cm (0 = aspect ratio only)."""
    per_inch = {1: 1.0, 2: CM_PER_INCH}.get(units)
    if per_inch is None:
        return None
    return _reading(x * per_inch, y * per_inch, per_inch, per_inch, whole=True)


def from_exif(blob: bytes | None) -> Reading | None:
    """IFD0's XResolution/YResolution/ResolutionUnit (inch when the unit is missing)."""
    if not blob:
        return None
    blob = exif_tags.strip_prefix(blob)
    x = exif_tags.rational_values(blob, X_RESOLUTION)
    if x is None:
        return None
    y = exif_tags.rational_values(blob, Y_RESOLUTION) or x
    unit = exif_tags.short_value(blob, RESOLUTION_UNIT)
    return from_units(x, y, UNIT_INCH if unit is None else unit)


def from_resolution_info(data: bytes) -> Reading | None:
    """Photoshop's ResolutionInfo: hRes (16.16 fixed, pixels per inch), units, vRes, units."""
    if len(data) < 16:
        return None
    h_res, _, _, v_res, _, _ = struct.unpack_from(">IHHIHH", data)
    return _reading(h_res / _FIXED, v_res / _FIXED, 1 / _FIXED, 1 / _FIXED)


def from_resources(blob: bytes | None) -> Reading | None:
    """The ResolutionInfo among Photoshop's resource blocks, if any."""
    if not blob:
        return None
    found = next((r for r in irb.resources(blob) if r.id == RESOLUTION_INFO), None)
    return from_resolution_info(found.data) if found else None


# -- writing -------------------------------------------------------------------------
def rational(ppi: float) -> tuple[int, int]:
    """A TIFF rational for a ppi value: denominators up to 1000, both parts 32-bit."""
    ppi = min(max(ppi, 1 / _MAX_DENOMINATOR), 0xFFFFFFFF)
    f = Fraction(ppi).limit_denominator(max(1, min(_MAX_DENOMINATOR, int(0xFFFFFFFF // ppi))))
    return max(f.numerator, 1), f.denominator


def phys(resolution: Resolution) -> bytes:
    """A pHYs chunk body: whole pixels per metre."""
    x, y = (min(max(int(v / METRES_PER_INCH + 0.5), 1), 0x7FFFFFFF) for v in resolution)
    return struct.pack(">IIB", x, y, 1)


def jfif_density(resolution: Resolution) -> tuple[int, int]:
    """Whole dots per inch for the JFIF header (16 bits each)."""
    x, y = (min(max(int(v + 0.5), 1), 0xFFFF) for v in resolution)
    return x, y


def _fixed(ppi: float) -> int:
    return min(max(round(ppi * _FIXED), 1), 0xFFFFFFFF)


def resolution_info(data: bytes, resolution: Resolution) -> bytes:
    """A ResolutionInfo with new hRes/vRes; display units and the rest as they were."""
    if len(data) < 16:
        return data
    out = bytearray(data)
    struct.pack_into(">I", out, 0, _fixed(resolution[0]))
    struct.pack_into(">I", out, 8, _fixed(resolution[1]))
    return bytes(out)


def synced_resources(resources: bytes | None, resolution: Resolution | None) -> bytes | None:
    """Photoshop's resources with a ResolutionInfo, if they hold one, set to `resolution`."""
    if not resources or resolution is None:
        return resources
    return irb.replace_data(resources, RESOLUTION_INFO,
                            lambda data: resolution_info(data, resolution))


def held_exactly(stored: Reading | None, resolution: Resolution) -> bool:
    """Whether what a format stored reads back as `resolution`."""
    return choose(stored) == resolution


def synced_exif(exif: bytes | None, resolution: Resolution | None, *,
                add: bool = False) -> bytes | None:
    """The EXIF with its resolution tags set to `resolution` (inch rationals).

    Only tags it has are set, unless `add` (WebP, where the EXIF is the only place,
    or a native place too coarse for the value): then missing ones are added, and
    with no EXIF at all one is made.
    """
    if resolution is None or (exif is None and not add):
        return exif
    if exif is None:
        made = _exif_values("<", resolution, unit_type=exif_tags.SHORT)
        entries = [exif_tags.Entry(tag, typ, 1, value) for tag, (typ, value) in made.items()]
        return exif_tags.build_blob("<", exif_tags.Ifd(entries))
    blob = exif_tags.strip_prefix(exif)
    parsed = exif_tags.ifd0_fields(blob)
    if parsed is None:
        return exif  # not an EXIF we can read: left as it is
    order, fields = parsed
    unit = fields.get(RESOLUTION_UNIT)
    unit_type = exif_tags.LONG if unit is not None and unit.type == exif_tags.LONG else exif_tags.SHORT
    return exif_tags.with_ifd0_values(blob, _exif_values(order, resolution, unit_type), add=add)


def _exif_values(order: str, resolution: Resolution, unit_type: int) -> dict[int, tuple[int, bytes]]:
    unit = struct.pack(order + ("I" if unit_type == exif_tags.LONG else "H"), UNIT_INCH)
    return {
        X_RESOLUTION: (exif_tags.RATIONAL, struct.pack(order + "II", *rational(resolution[0]))),
        Y_RESOLUTION: (exif_tags.RATIONAL, struct.pack(order + "II", *rational(resolution[1]))),
        RESOLUTION_UNIT: (unit_type, unit),
    }
