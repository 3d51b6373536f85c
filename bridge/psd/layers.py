"""The layer tree as users see it: listing, paths, and finding one layer.

Layers are listed top to bottom, as Photoshop's Layers panel shows them, and
numbered in that order. A layer is addressed by (tried in this order):

- its exact name, when no other layer has it;
- a path of names from the top level, "Group/Sub group/Layer" (a "/" or "\\"
  inside a name is written "\\/" or "\\\\");
- "#N", its number in `psd layers` (0 = top of the panel);
- "id:N", Photoshop's layer id (stable across saves; what the UXP panel knows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.errors import InvalidInput
from bridge.imaging.geometry import Bounds


@dataclass(frozen=True)
class Entry:
    """One layer in panel order, with where it sits."""

    index: int
    layer: Any  # psd_tools Layer
    path: str
    level: int


def escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace("/", "\\/")


def split_path(path: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path):
            current.append(path[i + 1])
            i += 2
            continue
        if c == "/":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def entries(psd: Any) -> list[Entry]:
    """Every layer, top of the panel first, groups before their contents."""
    out: list[Entry] = []

    def walk(container: Any, prefix: str, level: int) -> None:
        for layer in reversed(list(container)):
            path = f"{prefix}{escape(layer.name)}"
            out.append(Entry(len(out), layer, path, level))
            if layer.is_group():
                walk(layer, path + "/", level + 1)

    walk(psd, "", 0)
    return out


def layer_bounds(layer: Any) -> Bounds:
    left, top, right, bottom = layer.bbox
    return Bounds.from_corners(left, top, right, bottom)


def record_bounds(layer: Any) -> Bounds:
    """The rectangle the layer's pixel channels are stored at (not a group's union)."""
    r = layer._record
    return Bounds.from_corners(r.left, r.top, r.right, r.bottom)


def find_layer(psd: Any, ref: str) -> Entry:
    """Resolve a layer reference (see module docs); errors list what exists."""
    all_entries = entries(psd)
    by_name = [e for e in all_entries if e.layer.name == ref]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        choices = ", ".join(f"#{e.index} ({e.path})" for e in by_name)
        raise InvalidInput(
            f"{len(by_name)} layers are named '{ref}': {choices}; "
            "give a path like 'Group/Layer', '#N' or 'id:N'",
            layer=ref,
        )
    if "/" in ref:
        wanted = split_path(ref)
        hits = [e for e in all_entries if split_path(e.path) == wanted]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            choices = ", ".join(f"#{e.index}" for e in hits)
            raise InvalidInput(f"path '{ref}' names several layers: {choices}", layer=ref)
    if ref.startswith("#") and ref[1:].isdigit():
        n = int(ref[1:])
        if n < len(all_entries):
            return all_entries[n]
        raise InvalidInput(f"no layer #{n}: the document has {len(all_entries)}", layer=ref)
    if ref.lower().startswith("id:") and ref[3:].strip().isdigit():
        wanted_id = int(ref[3:])
        for e in all_entries:
            if e.layer.layer_id == wanted_id:
                return e
        raise InvalidInput(f"no layer has id {wanted_id}", layer=ref)
    names = ", ".join(f"'{e.path}'" for e in all_entries) or "none (the document has no layers)"
    raise InvalidInput(f"no layer '{ref}'; layers: {names}", layer=ref)


def kind_of(layer: Any) -> str:
    """psd-tools' kind, with adjustment layers named by what they adjust."""
    return str(layer.kind)


def mask_info(layer: Any) -> dict[str, Any] | None:
    if not layer.has_mask():
        return None
    m = layer.mask
    bounds = Bounds.from_corners(m.left, m.top, m.right, m.bottom)
    return {
        "bounds": bounds.as_list(),
        "default": 255 if m.background_color else 0,
        "disabled": bool(m.disabled),
    }


def describe(entry: Entry, depth: int) -> dict[str, Any]:
    layer = entry.layer
    return {
        "index": entry.index,
        "id": layer.layer_id,
        "name": layer.name,
        "path": entry.path,
        "level": entry.level,
        "kind": kind_of(layer),
        "bounds": layer_bounds(layer).as_list(),
        "visible": bool(layer.visible),
        "opacity": int(layer.opacity),
        "blend_mode": layer.blend_mode.name.lower(),
        "clipping": bool(layer.clipping),
        "mask": mask_info(layer),
        "vector_mask": bool(layer.has_vector_mask()),
        "has_pixels": bool(layer.has_pixels()),
        "depth": depth,
    }
