"""Pixels over HTTP: reading submissions (multipart or raw body) and answering with pixels.

Bytes are read once into one buffer per part and decoded without further
copies (raw buffers become arrays in place); answers in raw format are views
of the result's memory. Decoding and encoding run in the thread pool.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.errors import InvalidInput, InvalidParams, TooLarge, UnsupportedFormat
from bridge.imaging import codecs
from bridge.imaging.geometry import Bounds
from bridge.imaging.image import Image
from bridge.imaging.mask import Mask
from bridge.ops.base import Layer, OpResult
from bridge.server.inflight import MEMORY, SHARE

TEXT_PARTS = {"op", "params", "raw", "mask_raw", "priority"}
BINARY_PARTS = {"image", "mask", "icc"}
TEXT_LIMIT = 1 << 20
CHUNK = 1 << 20
STREAM_ABOVE = 8 << 20
SEND_SLICE = 4 << 20
OUTPUT_FORMATS = tuple(codecs.FORMATS)


@dataclass
class Submission:
    op: str | None
    params: dict[str, Any]
    image: Image
    mask: Mask | None
    priority: str
    extra: dict[str, bytes] = field(default_factory=dict)


class BodyBudget:
    """Counts bytes across all parts of one request against the configured maximum, and
    those kept in memory against what the whole server may hold (inflight.py)."""

    def __init__(self, limit: int, request: web.Request | None = None,
                 source: str = "--max-body-mb") -> None:
        self.limit = limit
        self.source = source
        self.used = 0
        self._memory = request.app.get(MEMORY) if request is not None else None
        self._share = request.get(SHARE) if request is not None else None

    def take(self, n: int) -> None:
        """Bytes read (to a file or to memory), for the per-request limit."""
        self.used += n
        if self.used > self.limit:
            raise TooLarge(
                f"request body is larger than the limit of {self.limit // (1 << 20)} MB "
                f"({self.source})", limit_bytes=self.limit)

    async def hold(self, n: int) -> None:
        """Bytes read and kept in memory: they count against the server's share too."""
        self.take(n)
        if self._memory is not None and self._share is not None:
            await self._memory.take(self._share, n)


async def _read_part(part: BodyPartReader, budget: BodyBudget, limit: int | None = None) -> bytearray:
    buf = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        await budget.hold(len(chunk))
        buf += chunk
        if limit is not None and len(buf) > limit:
            raise InvalidInput(f"part '{part.name}' is too long")
    return buf


async def _read_raw_body(request: web.Request,
                         max_body: int) -> tuple[dict[str, str], dict[str, bytearray]]:
    """One image as the whole body; its layout and the job in X- headers."""
    buf = await _read_whole(request, BodyBudget(max_body, request), max_body)
    h = request.headers
    texts = {"op": h.get("X-Op", ""), "params": h.get("X-Params", ""),
             "priority": h.get("X-Priority", "")}
    try:
        texts["raw"] = json.dumps({k: int(h[f"X-{k.capitalize()}"])
                                   for k in ("width", "height", "channels", "depth")})
    except KeyError as e:
        raise InvalidInput(f"a raw body needs the header {e.args[0]!r}") from None
    except ValueError:
        raise InvalidInput("X-Width, X-Height, X-Channels and X-Depth must be integers") from None
    return texts, {"image": buf}


def json_part(name: str, data: bytes | str | None, kind: type = dict) -> Any:
    if data is None or data == b"" or data == "":
        return None
    try:
        value = json.loads(data)
    except ValueError as e:
        raise InvalidParams(f"part '{name}' is not valid JSON: {e}") from None
    if not isinstance(value, kind):
        raise InvalidParams(f"part '{name}' must be a JSON {kind.__name__}")
    return value


def _layout(raw: dict[str, Any], name: str, keys: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for key in keys:
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(f"'{name}' needs an integer '{key}'")
        out[key] = value
    return out


@dataclass
class Form:
    texts: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytearray] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


async def read_form(request: web.Request, max_body: int, *, texts: set[str], blobs: set[str],
                    files: dict[str, Path] | None = None) -> Form:
    """A multipart body: small text parts, binary parts in memory, file parts streamed to disk.

    Unknown parts are refused so a typo in a client shows up as an error, not as
    a silently ignored setting.
    """
    budget = BodyBudget(max_body, request)
    if request.content_length is not None and request.content_length > max_body:
        budget.take(request.content_length)
    if request.content_type != "multipart/form-data":
        raise UnsupportedFormat(
            f"send multipart/form-data, not '{request.content_type or 'nothing'}'")
    files = files or {}
    form = Form()
    seen: set[str] = set()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidInput("nested multipart bodies are not supported")
            name = part.name or ""
            if name in seen:
                raise InvalidInput(f"part '{name}' appears more than once")
            seen.add(name)
            if name in texts:
                form.texts[name] = text_of(name, await _read_part(part, budget, TEXT_LIMIT))
            elif name in blobs:
                form.blobs[name] = await _read_part(part, budget)
            elif name in files:
                with open(files[name], "wb") as f:
                    while chunk := await part.read_chunk(CHUNK):
                        budget.take(len(chunk))
                        f.write(chunk)
                form.files[name] = files[name]
            else:
                expected = ", ".join(sorted(texts | blobs | set(files)))
                raise InvalidInput(f"unknown part '{name}'; expected: {expected}")
    except MALFORMED as e:
        raise malformed(e) from None
    return form


# What aiohttp's multipart parser raises on a body that is not one (no or a wrong
# boundary, a header line over 8 KB, a part that never ends): the client's mistake.
MALFORMED = (ValueError, HttpProcessingError)


def malformed(e: BaseException) -> InvalidInput:
    return InvalidInput(f"the multipart body is malformed: {str(e).strip()[:200]}")


async def read_small_body(request: web.Request, limit: int = TEXT_LIMIT) -> bytes:
    """A small body (JSON settings) read whole, refused past `limit` as it streams."""
    return bytes(await _read_whole(request, BodyBudget(limit, request, "for a JSON body"), limit))


async def _read_whole(request: web.Request, budget: BodyBudget, limit: int) -> bytearray:
    """The body in memory, refused from its declared length or as it streams past `limit`."""
    if request.content_length is not None and request.content_length > limit:
        budget.take(request.content_length)
    buf = bytearray()
    while chunk := await request.content.read(CHUNK):
        await budget.hold(len(chunk))
        buf += chunk
    return buf


def text_of(name: str, data: bytes | bytearray) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"part '{name}' is not UTF-8 text") from None


async def read_submission(request: web.Request, max_body: int, max_pixels: int) -> Submission:
    if request.content_type == "application/octet-stream":
        texts, blobs = await _read_raw_body(request, max_body)
    else:
        form = await read_form(request, max_body, texts=TEXT_PARTS, blobs=BINARY_PARTS)
        texts, blobs = form.texts, form.blobs

    if "image" not in blobs or not blobs["image"]:
        raise InvalidInput("the 'image' part is missing or empty")
    params = json_part("params", texts.get("params")) or {}
    raw = json_part("raw", texts.get("raw"))
    mask_raw = json_part("mask_raw", texts.get("mask_raw"))
    priority = texts.get("priority") or "interactive"
    if priority not in ("interactive", "batch"):
        raise InvalidParams("priority must be 'interactive' or 'batch'")

    loop = asyncio.get_running_loop()
    image, mask = await loop.run_in_executor(
        None, _decode, blobs, raw, mask_raw, max_pixels)
    return Submission(texts.get("op") or None, params, image, mask, priority)


def _decode(blobs: dict[str, bytearray], raw: dict[str, Any] | None,
            mask_raw: dict[str, Any] | None, max_pixels: int) -> tuple[Image, Mask | None]:
    data = blobs["image"]
    if raw is not None:
        lay = _layout(raw, "raw", ("width", "height", "channels", "depth"))
        image = codecs.decode_raw(data, lay["width"], lay["height"], lay["channels"],
                                  lay["depth"], max_pixels=max_pixels)
    else:
        image = codecs.decode(data, max_pixels=max_pixels)
    if blobs.get("icc"):
        image = image.with_pixels(image.pixels, icc=bytes(blobs["icc"]))
    mask = None
    if "mask" in blobs:
        mask = codecs.decode_mask(blobs["mask"], image.extent, raw=mask_raw)
    return image, mask


# -- answers -------------------------------------------------------------------
def choose_format(requested: str | None, source_format: str, image: Image) -> str:
    if requested:
        if requested not in OUTPUT_FORMATS:
            raise InvalidParams(f"format must be one of: {', '.join(OUTPUT_FORMATS)}")
        return requested
    fmt = source_format if source_format in OUTPUT_FORMATS else "png"
    if fmt == "jpeg" and (image.has_alpha or image.depth != 8):
        return "png" if image.depth == 8 else "tiff"
    if fmt == "webp" and image.depth != 8:
        return "tiff"
    return fmt


def convert_depth(image: Image, depth: str) -> Image:
    """?depth=8|16|32: what a client wants to receive, whatever the result's own depth."""
    from bridge.imaging.depth import to_float, to_uint8, to_uint16

    convert = {"8": to_uint8, "16": to_uint16, "32": to_float}.get(depth)
    if convert is None:
        raise InvalidParams("depth must be 8, 16 or 32")
    return image.with_pixels(convert(image.pixels))


def pixel_headers(image: Image, bounds: Bounds, result: OpResult, job_id: str,
                  has_mask: bool) -> dict[str, str]:
    return {
        "X-Width": str(image.width),
        "X-Height": str(image.height),
        "X-Channels": str(image.channels),
        "X-Depth": str(image.depth),
        "X-Bounds": ",".join(map(str, bounds.as_list())),
        "X-Extent": f"{result.extent.width},{result.extent.height}",
        "X-Has-Mask": "1" if has_mask else "0",
        "X-Job-Id": job_id,
        "Access-Control-Expose-Headers": "X-Width, X-Height, X-Channels, X-Depth, X-Bounds, "
                                         "X-Extent, X-Has-Mask, X-Job-Id",
    }


def encode_body(image: Image, fmt: str, quality: int) -> bytes | memoryview:
    if fmt == "raw":
        return codecs.encode_raw(image)
    return codecs.encode(image, fmt, quality=quality)


async def pixels_response(request: web.Request, image: Image, fmt: str, quality: int,
                          headers: dict[str, str]) -> web.StreamResponse:
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(None, encode_body, image, fmt, quality)
    if len(body) <= STREAM_ABOVE:
        return web.Response(body=body, content_type=codecs.FORMATS[fmt].mime, headers=headers)
    # Large answers go out in slices of the result's own memory: handing the whole
    # buffer to the transport at once makes asyncio copy everything the socket
    # did not take immediately.
    resp = web.StreamResponse(headers={**headers, "Content-Type": codecs.FORMATS[fmt].mime})
    resp.content_length = len(body)
    await resp.prepare(request)
    view = memoryview(body).cast("B")
    for start in range(0, len(view), SEND_SLICE):
        await resp.write(view[start:start + SEND_SLICE])
    await resp.write_eof()
    return resp


def describe_result(result: OpResult) -> dict[str, Any]:
    return {
        "extent": [result.extent.width, result.extent.height],
        "layers": [describe_layer(la) for la in result.layers],
        "metadata": result.metadata,
    }


def describe_layer(layer: Layer) -> dict[str, Any]:
    return {
        "name": layer.name,
        "bounds": layer.bounds.as_list(),
        "width": layer.image.width,
        "height": layer.image.height,
        "channels": layer.image.channels,
        "depth": layer.image.depth,
        "has_mask": layer.mask is not None,
        "visible": layer.visible,
    }
