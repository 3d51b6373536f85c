"""Open a PSD or PSB and refuse, with a clear message, what we cannot round-trip.

We support RGB and Grayscale documents at 8 and 16 bits per channel, PSD and
PSB. Everything else (CMYK, Lab, Duotone, Multichannel, Bitmap, Indexed,
32-bit) is refused before any work is done, so the input is never touched.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import InvalidInput, TooLarge, UnsupportedFormat
from bridge.imaging.formats import check_decoded_size
from bridge.imaging.geometry import Extent

SUPPORTED = "RGB and Grayscale documents at 8 or 16 bits per channel (PSD or PSB)"

_MODE_NAMES = {
    0: "Bitmap", 1: "Grayscale", 2: "Indexed", 3: "RGB", 4: "CMYK",
    7: "Multichannel", 8: "Duotone", 9: "Lab",
}
_SUPPORTED_MODES = {1, 3}
_SUPPORTED_DEPTHS = {8, 16}
# Photoshop's own limits: a PSD side is at most 30,000 pixels, a PSB side 300,000.
PSD_MAX_SIDE = 30_000
PSB_MAX_SIDE = 300_000
MAX_CHANNELS = 56  # the file format's own range, 1 to 56


@dataclass(frozen=True)
class Header:
    version: int  # 1 = PSD, 2 = PSB
    channels: int
    height: int
    width: int
    depth: int
    mode: int

    @property
    def mode_name(self) -> str:
        return _MODE_NAMES.get(self.mode, f"mode {self.mode}")

    @property
    def kind(self) -> str:
        return "PSB" if self.version == 2 else "PSD"


def read_header(path: Path) -> Header:
    """The 26-byte file header, checked for what a PSD must be."""
    with open(path, "rb") as f:
        raw = f.read(26)
    if len(raw) < 4 or raw[:4] != b"8BPS":
        raise UnsupportedFormat(f"{path.name} is not a Photoshop file (no 8BPS signature)")
    if len(raw) < 26:
        raise InvalidInput(f"{path.name} is truncated: the file ends inside its header")
    version, _reserved, channels, height, width, depth, mode = struct.unpack(">H6sHIIHH", raw[4:])
    if version not in (1, 2):
        raise UnsupportedFormat(f"{path.name}: unknown Photoshop file version {version}")
    return Header(version, channels, height, width, depth, mode)


def check_merged_bytes(header: Header, max_pixels: int, what: str) -> None:
    """The merged image's decoded bytes against the pixel limit's share, before psd-tools
    decodes anything: every channel of it, spot and alpha channels too, is decoded whole."""
    check_decoded_size(Extent(header.width, header.height),
                       header.channels * max(1, header.depth // 8), max_pixels, what,
                       layout=f"{header.channels} channels of {header.depth} bits")


def check_supported(header: Header, name: str) -> None:
    if not 1 <= header.channels <= MAX_CHANNELS:
        raise UnsupportedFormat(
            f"{name} declares {header.channels} channels; a Photoshop document has 1 to "
            f"{MAX_CHANNELS}", channels=header.channels)
    if header.mode not in _SUPPORTED_MODES or header.depth not in _SUPPORTED_DEPTHS:
        raise UnsupportedFormat(
            f"{name} is a {header.mode_name} {header.depth}-bit document; "
            f"supported: {SUPPORTED}",
            mode=header.mode_name, depth=header.depth,
        )


@dataclass
class Document:
    """An opened, validated document and the facts every step needs."""

    path: Path
    psd: object  # psd_tools.PSDImage (typed loosely: psd-tools is imported lazily)
    header: Header
    layer_compression: object = None  # chosen once by pixels.compression_for

    @property
    def extent(self) -> Extent:
        return Extent(self.header.width, self.header.height)

    @property
    def depth(self) -> int:
        return self.header.depth

    @property
    def color_channels(self) -> int:
        return 3 if self.header.mode == 3 else 1

    @property
    def mode_name(self) -> str:
        return self.header.mode_name

    @property
    def icc(self) -> bytes | None:
        from psd_tools.constants import Resource

        data = self.psd.image_resources.get_data(Resource.ICC_PROFILE)  # type: ignore[attr-defined]
        return bytes(data) if data else None

    @property
    def has_real_composite(self) -> bool:
        """False when Photoshop saved without "Maximize Compatibility": no true merged image."""
        return bool(self.psd.has_preview())  # type: ignore[attr-defined]

    def describe(self) -> dict[str, object]:
        return {
            "width": self.header.width,
            "height": self.header.height,
            "mode": self.mode_name,
            "depth": self.depth,
            "format": self.header.kind.lower(),
            "icc": self.icc is not None,
        }


def open_document(path: Path | str) -> Document:
    """Open and validate; raises UnsupportedFormat / InvalidInput, never half-opens."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such PSD file: {path}")
    header = read_header(path)
    check_supported(header, path.name)

    from psd_tools import PSDImage
    from psd_tools.compression import PSDDecompressionWarning
    from psd_tools.psd.parse_limits import ParseLimitError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PSDDecompressionWarning)
            psd = PSDImage.open(path)
    except ParseLimitError as e:  # psd-tools' guard against runaway structures
        raise TooLarge(f"{path.name} has more structure than the reader allows: {e}") from e
    except (OSError, ValueError, EOFError, struct.error, KeyError, IndexError, TypeError) as e:
        raise InvalidInput(f"{path.name} is damaged or truncated: {e}") from e
    doc = Document(path, psd, header)
    _check_merged_image(doc)
    return doc


def _check_merged_image(doc: Document) -> None:
    """The merged image runs to the end of the file, so truncation shows up only here.

    psd-tools reads the section as 'whatever is left' and would later decode a
    short section into black; check its length against what the header needs.
    """
    from psd_tools.constants import Compression

    h = doc.header
    image_data = doc.psd._record.image_data  # type: ignore[attr-defined]
    data = image_data.data
    rows = h.height * h.channels
    sample = h.depth // 8
    name = doc.path.name
    if image_data.compression == Compression.RAW:
        needed = rows * h.width * sample
        if len(data) < needed:
            raise InvalidInput(
                f"{name} is truncated: the merged image holds {len(data)} of {needed} bytes"
            )
    elif image_data.compression == Compression.RLE:
        count_size = 4 if h.version == 2 else 2
        table = rows * count_size
        if len(data) < table:
            raise InvalidInput(f"{name} is truncated: the merged image's row table is cut short")
        counts = np.frombuffer(data[:table], ">u4" if h.version == 2 else ">u2")
        needed = table + int(counts.sum(dtype=np.int64))
        if len(data) < needed:
            raise InvalidInput(
                f"{name} is truncated: the merged image holds {len(data)} of {needed} bytes"
            )
    else:
        import zlib

        try:
            # Streamed with a bounded output so a huge preview is never held whole.
            out = zlib.decompressobj()
            for start in range(0, len(data), 1 << 20):
                out.decompress(data[start:start + (1 << 20)], 1 << 26)
                while out.unconsumed_tail:
                    out.decompress(out.unconsumed_tail, 1 << 26)
            if not out.eof:
                raise zlib.error("stream ends early")
        except zlib.error as e:
            raise InvalidInput(f"{name} is truncated or damaged: merged image: {e}") from e
