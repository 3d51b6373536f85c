"""Property-based fuzzing of every upload path, in-process: image files, masks, raw buffers,
recipes, and each operation's JSON parameters.

Each target must end in a value or a 4xx BridgeError with a message; never another
exception, never a hang (tests/hardening/fuzzing.py). Mutations are structure-aware
where a blind flip would only ever test the first checksum: PNG chunks get valid CRCs,
TIFF IFD entries and JPEG segments are rewritten in place, and EXIF blobs (which our own
parser reads and our own writers rewrite) are generated whole. A decoded image must also
encode to every format and decode again: hostile metadata that survives the decoder
must not break the way out.
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import tifffile
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import Image as PILImage

from bridge.errors import BridgeError
from bridge.imaging import codecs
from bridge.imaging.geometry import Extent
from bridge.imaging.image import Image
from tests.conftest import SHARED
from tests.hardening.fuzzing import contract, fuzz_settings

MAX_PIXELS = 2_000_000


# -- seed files -----------------------------------------------------------------------------
def _pattern(h: int, w: int, c: int, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * 7 + y * 3 + k * 50) % 256 / 255.0 for k in range(c)]
    return (np.stack(planes, -1) * top).astype(dtype)


def _exif_with_orientation(orientation: int) -> bytes:
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def _pil(pixels: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(pixels.squeeze(-1) if pixels.shape[2] == 1 else pixels).save(buf, fmt, **kw)
    return buf.getvalue()


def seed_files() -> dict[str, bytes]:
    rgb, rgba = _pattern(12, 16, 3), _pattern(12, 16, 4)
    out = {
        "png_rgb": _pil(rgb, "PNG"),
        "png_rgba16": codecs.encode(Image(_pattern(12, 16, 4, np.uint16), icc=None,
                                          exif=_exif_with_orientation(6)), "png"),
        "png_grey": _pil(_pattern(12, 16, 1), "PNG"),
        "png_palette": _pil_palette(),
        "jpeg_exif": _pil(rgb, "JPEG", quality=90, exif=b"Exif\0\0" + _exif_with_orientation(8)),
        "jpeg_progressive": _pil(rgb, "JPEG", progressive=True),
        "webp": _pil(rgba, "WEBP", lossless=True),
        "tiff_metadata": codecs.encode(Image(rgb, exif=_exif_with_orientation(3)), "tiff"),
        "tiff_lzw": _pil(rgb, "TIFF", compression="tiff_lzw"),
    }
    for name, kw in {"tiff16": {}, "tiff_deflate": {"compression": "zlib"},
                     "tiff_planar": {"planarconfig": "separate"}}.items():
        buf = io.BytesIO()
        dtype = np.uint16 if name == "tiff16" else np.uint8
        tifffile.imwrite(buf, _pattern(12, 16, 3, dtype), photometric="rgb", **kw)
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    tifffile.imwrite(buf, _pattern(12, 16, 1, np.float32), photometric="minisblack")
    out["tiff_float"] = buf.getvalue()
    for name in ("hopper.jpg", "hopper.tif"):
        if (SHARED / "samples" / name).is_file():
            out[name] = (SHARED / "samples" / name).read_bytes()
    return out


def _pil_palette() -> bytes:
    img = PILImage.fromarray(_pattern(12, 16, 3)).convert("P", palette=PILImage.Palette.ADAPTIVE)
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    return buf.getvalue()


SEEDS = seed_files()


# -- structure-aware mutations -----------------------------------------------------------------
def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_chunks(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(offset, kind, body) of each chunk, as far as the data goes."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        out.append((pos, kind, data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def tiff_entries(data: bytes) -> list[int]:
    """Offsets of the first IFD's 12-byte entries of a little-endian classic TIFF."""
    if data[:4] != b"II*\0":
        return []
    ifd = struct.unpack("<I", data[4:8])[0]
    if ifd + 2 > len(data):
        return []
    n = struct.unpack("<H", data[ifd:ifd + 2])[0]
    return [ifd + 2 + 12 * i for i in range(n) if ifd + 14 + 12 * i <= len(data)]


def jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(offset of the marker, length field) of each segment before the scan."""
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        n = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        out.append((pos, n))
        if marker == 0xDA:
            break
        pos += 2 + n
    return out


EXIF_TAGS = [0x0112, 0x011A, 0x011B, 0x0128, 0x8769, 0x8825, 0xA005, 0x0100, 0x0101, 0x010F,
             0x0132, 0x9003, 0x927C, 0x0201, 0x0202, 0xFFFF, 0x0000]


@st.composite
def exif_blobs(draw) -> bytes:
    """A TIFF-structured EXIF block with arbitrary entries (types, counts, offsets)."""
    order = draw(st.sampled_from(["<", ">"]))
    entries = draw(st.lists(st.tuples(st.sampled_from(EXIF_TAGS) | st.integers(0, 0xFFFF),
                                       st.integers(0, 14), st.integers(0, 2**32 - 1),
                                       st.integers(0, 2**32 - 1)), max_size=12))
    body = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack(order + "HHII", tag, kind, count, value)
    body += struct.pack(order + "I", draw(st.integers(0, 2**32 - 1) | st.just(0)))
    tail = draw(st.binary(max_size=64))
    head = (b"II*\0" if order == "<" else b"MM\0*") + struct.pack(order + "I", 8)
    return head + body + tail


@st.composite
def mutated(draw) -> bytes:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    how = draw(st.sampled_from(["flip", "cut", "png", "tiff", "jpeg", "exif"]))
    if how == "png" and data.startswith(b"\x89PNG"):
        chunks = png_chunks(bytes(data))
        pos, kind, body = draw(st.sampled_from(chunks))
        action = draw(st.sampled_from(["body", "length", "insert", "duplicate"]))
        if action == "body" and body:
            b = bytearray(body)
            for _ in range(draw(st.integers(1, 4))):
                b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
            data[pos:pos + 12 + len(body)] = png_chunk(kind, bytes(b))
        elif action == "length":
            data[pos:pos + 4] = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
        elif action == "insert":
            kind = draw(st.sampled_from([b"iCCP", b"eXIf", b"iTXt", b"zTXt", b"tEXt", b"pHYs",
                                         b"tRNS", b"PLTE", b"sBIT", b"IHDR", b"acTL", b"gAMA"]))
            extra = draw(st.binary(max_size=80))
            if kind in (b"iCCP", b"zTXt"):
                extra = draw(st.binary(max_size=20)) + b"\0\0" + zlib.compress(
                    draw(st.binary(max_size=200)))
            data[33:33] = png_chunk(kind, extra)  # right after IHDR
        else:
            data[pos:pos] = data[pos:pos + 12 + len(body)]
    elif how == "tiff" and (entries := tiff_entries(bytes(data))):
        at = draw(st.sampled_from(entries))
        field = draw(st.sampled_from([2, 4, 8]))  # type, count, value/offset
        width = 2 if field == 2 else 4
        data[at + field:at + field + width] = draw(st.integers(0, 256**width - 1)).to_bytes(
            width, "little")
    elif how == "jpeg" and data.startswith(b"\xff\xd8") and (segs := jpeg_segments(bytes(data))):
        pos, n = draw(st.sampled_from(segs))
        if draw(st.booleans()) and n > 2:
            for _ in range(draw(st.integers(1, 4))):
                data[pos + 4 + draw(st.integers(0, n - 3))] = draw(st.integers(0, 255))
        else:
            data[pos + 2:pos + 4] = struct.pack(">H", draw(st.integers(0, 0xFFFF)))
    elif how == "exif":
        blob = draw(exif_blobs())
        if data.startswith(b"\x89PNG"):
            data[33:33] = png_chunk(b"eXIf", blob)
        elif data.startswith(b"\xff\xd8"):
            segment = b"Exif\0\0" + blob
            data[2:2] = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
        else:
            data[-len(blob):] = blob  # over a TIFF's tail (its pixels or an IFD)
    elif how == "cut":
        del data[draw(st.integers(0, len(data) - 1)):]
    else:
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def decode_and_reencode(data: bytes) -> None:
    image = codecs.decode(data, max_pixels=MAX_PIXELS)
    assert image.pixels.size > 0
    for fmt in ("png", "tiff", "jpeg", "webp"):
        if fmt == "jpeg" and image.has_alpha:
            continue  # refused on purpose (InvalidParams); tested elsewhere
        out = codecs.encode(image, fmt)
        again = codecs.decode(out)  # what we write, we read
        assert again.extent == image.extent


@fuzz_settings(150)
@given(mutated())
def test_image_files(data: bytes) -> None:
    contract("image", data, lambda: decode_and_reencode(data))


@fuzz_settings(60)
@given(st.binary(max_size=256))
def test_arbitrary_bytes_as_images(data: bytes) -> None:
    contract("image", data, lambda: decode_and_reencode(data))


# -- masks ---------------------------------------------------------------------------------
@fuzz_settings(80)
@given(mutated() | st.binary(max_size=300), st.integers(0, 40), st.integers(0, 40),
       st.none() | st.dictionaries(st.sampled_from(["width", "height", "depth", "channels"]),
                                   st.integers(-5, 70000) | st.booleans() | st.text(max_size=3)
                                   | st.floats(allow_nan=True), max_size=4))
def test_masks(data: bytes, w: int, h: int, raw: dict | None) -> None:
    blob = json.dumps({"data": data.hex(), "extent": [w, h], "raw": raw}).encode()
    contract("mask", blob, lambda: codecs.decode_mask(data, Extent(w, h), raw=raw),
             suffix=".json")


# -- raw buffers with lying headers -------------------------------------------------------------
layout_values = (st.integers(-3, 5) | st.integers(-2**40, 2**40) | st.sampled_from([8, 16, 32, 64])
                 | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=2) | st.none())


@fuzz_settings(120)
@given(layout_values, layout_values, layout_values, layout_values, st.integers(0, 4096))
def test_raw_buffers(width, height, channels, depth, length: int) -> None:
    data = bytes(length)
    blob = json.dumps({"layout": [width, height, channels, depth], "length": length}).encode()

    def run() -> None:
        image = codecs.decode_raw(data, width, height, channels, depth, max_pixels=MAX_PIXELS)
        assert image.pixels.nbytes == length

    contract("raw", blob, run, suffix=".json")


# -- recipes -------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=20) | st.sampled_from(["@reference", "../../etc/passwd", "/dev/zero",
                                             "#ffffff", "png", "jpeg", "\x00"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def recipe_texts(draw) -> str:
    from bridge.ops.registry import operations

    names = sorted(operations())
    steps = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(names) | st.text(max_size=8))
        params = {}
        if op in operations():
            for p in operations()[op].params:
                if draw(st.booleans()):
                    params[p.name] = draw(json_values)
        if draw(st.booleans()):
            params[draw(st.text(max_size=6))] = draw(json_values)
        steps.append({"op": op, **params} if draw(st.booleans()) else {"op": op, "params": params})
    doc: dict = {"steps": steps}
    if draw(st.booleans()):
        doc["output"] = draw(st.dictionaries(st.sampled_from(["format", "quality", "suffix",
                                                               "background", "x"]), json_values))
    if draw(st.booleans()):
        doc["name"] = draw(json_values)
    text = json.dumps(doc)
    how = draw(st.sampled_from(["json", "cut", "toml", "raw"]))
    if how == "cut":
        return text[: draw(st.integers(0, len(text)))]
    if how == "toml":
        return draw(st.sampled_from([
            'name = "x"\n[[steps]]\nop = "passthrough"\ndelay_s = ',
            '[[steps]]\nop = "color-match"\nreference = "', '[output]\nformat = 1\n',
            "[[steps]]\n" * 60 + 'op = "passthrough"\n', 'steps = [{op = "upscale", scale = 1e999}]',
            '[[steps]]\nop = "upscale"\n[steps.params]\nscale = "2"',
        ])) + draw(st.text(max_size=20))
    if how == "raw":
        return draw(st.text(max_size=200))
    return text


@fuzz_settings(150)
@given(recipe_texts())
def test_recipes(text: str) -> None:
    from bridge.recipes import check_recipe, parse_recipe

    def run() -> None:
        recipe = parse_recipe(text, base_dir=None, source="fuzz")
        check_recipe(recipe)

    contract("recipe", text.encode("utf-8", "surrogatepass"), run, suffix=".txt")


# -- every operation's parameters -------------------------------------------------------------
def in_schema(p) -> st.SearchStrategy:
    if p.choices is not None:
        one = st.sampled_from(list(p.choices))
    elif p.type is bool:
        one = st.booleans()
    elif p.type is int:
        lo = int(p.minimum) if p.minimum is not None else -2**31
        hi = int(p.maximum) if p.maximum is not None else 2**31
        one = st.integers(lo, hi)
    elif p.type is float:
        one = st.floats(p.minimum if p.minimum is not None else -1e6,
                        p.maximum if p.maximum is not None else 1e6, allow_nan=False)
    elif p.pattern is not None:
        one = st.from_regex(p.pattern, fullmatch=True)
    else:
        one = st.text(max_size=40) | st.sampled_from(["../../../etc/passwd", "/etc/passwd",
                                                      "~/.ssh/id_rsa", "\\\\server\\share\\x",
                                                      "C:\\Windows\\win.ini", "/dev/zero",
                                                      "model.safetensors", "a\x00b"])
    if p.many:
        one = st.lists(one, max_size=3)
    return one | st.none() if p.nullable else one


out_of_schema = (st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats()
                 | st.text(max_size=5000) | st.lists(st.integers(), max_size=3)
                 | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
                 | st.sampled_from(["nan", "inf", "-1", "1e999", "\x00", "", " "]))


@st.composite
def op_params(draw) -> tuple[str, dict]:
    from bridge.ops.registry import operations

    name = draw(st.sampled_from(sorted(operations())))
    params = {}
    for p in operations()[name].params:
        choice = draw(st.integers(0, 3))
        if choice == 1:
            params[p.name] = draw(in_schema(p))
        elif choice == 2:
            params[p.name] = draw(out_of_schema)
    if draw(st.integers(0, 5)) == 0:
        params[draw(st.text(min_size=1, max_size=8))] = draw(out_of_schema)
    return name, params


@fuzz_settings(300)
@given(op_params(), st.booleans())
def test_operation_parameters_at_submission(case: tuple[str, dict], with_mask: bool) -> None:
    """What POST /v1/jobs does before queueing: validate, then the operation's own check
    (with the real model manager, which finds nothing installed)."""
    from bridge.config import load_settings
    from bridge.imaging.mask import Mask
    from bridge.models.manager import ModelManager
    from bridge.ops.registry import get_operation, prepare

    name, params = case
    try:
        blob = json.dumps({"op": name, "params": params}, allow_nan=True).encode()
    except (TypeError, ValueError):
        assume(False)
    image = Image(_pattern(16, 16, 3))
    mask = Mask.from_array(np.pad(np.full((6, 6), 255, np.uint8), 5)) if with_mask else None
    manager = ModelManager(load_settings())
    contract("params", blob, lambda: prepare(get_operation(name), image, mask, params, manager),
             suffix=".json")


@fuzz_settings(120)
@given(op_params())
def test_operations_run_with_in_schema_parameters(case: tuple[str, dict]) -> None:
    """Valid parameters on a small image: a result or a clear refusal (a model that is
    not installed, a file that is not there, a file that is no model: model_error),
    never a crash."""
    from bridge.imaging.mask import Mask
    from bridge.ops.base import OpContext
    from bridge.ops.registry import get_operation, run_operation

    name, params = case
    op = get_operation(name)
    try:
        values = op.params.validate(params)
    except BridgeError:
        assume(False)
    values.pop("delay_s", None)  # passthrough's sleep: nothing to find there
    blob = json.dumps({"op": name, "params": values}, allow_nan=True).encode()
    image = Image(_pattern(24, 24, 3))
    mask = Mask.from_array(np.pad(np.full((8, 8), 255, np.uint8), 8)) if op.mask != "none" else None
    ctx = OpContext(max_pixels=250_000)
    contract("run", blob, lambda: run_operation(name, image, mask, values, ctx), suffix=".json",
             statuses=(400, 404, 409, 413, 415, 500, 507))
