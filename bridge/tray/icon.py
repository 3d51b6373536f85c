"""The tray icon, drawn with Pillow: an aperture ring whose colour says the state, a badge
with the number of jobs when busy or paused, a mark when something went wrong."""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

from bridge.tray.status import TrayStatus

SIZE = 64
COLOURS = {
    "idle": (143, 163, 191),
    "busy": (77, 155, 255),
    "paused": (226, 171, 69),
    "error": (236, 95, 87),
    "stopping": (110, 117, 128),
}
PLATE = (29, 33, 38, 255)


@cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def render(status: TrayStatus, size: int = SIZE) -> Image.Image:
    """The icon for a status; identical statuses give identical images."""
    return _render(status.kind, min(status.jobs, 99), size).copy()


@cache
def _render(kind: str, jobs: int, size: int) -> Image.Image:
    scale = 4  # drawn large and reduced: smooth edges without antialiasing support
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    colour = COLOURS[kind]
    d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 5, fill=PLATE)
    c, r, w = s / 2, s * 0.34, max(2, s // 14)
    d.ellipse((c - r, c - r, c + r, c + r), outline=colour, width=w)
    if kind == "paused":
        bw, bh = s * 0.075, s * 0.26
        for x0 in (c - bw * 1.9, c + bw * 0.6):
            d.rounded_rectangle((x0, c - bh / 2, x0 + bw * 1.3, c + bh / 2), radius=bw / 3, fill=colour)
    else:
        # Four ticks toward the centre, like the dashboard's logo: an aperture, a target.
        for dx, dy in ((0, -1), (1, 0), (0, 1), (-1, 0)):
            d.line((c + dx * r, c + dy * r, c + dx * r * 0.45, c + dy * r * 0.45), fill=colour,
                   width=w)
        dot = s * 0.1
        d.ellipse((c - dot, c - dot, c + dot, c + dot), fill=colour)
    badge_text = "!" if kind == "error" else str(jobs) if jobs and kind in ("busy", "paused") else ""
    if badge_text:
        br = s * 0.23
        bx, by = s - br - s * 0.02, s - br - s * 0.02
        d.ellipse((bx - br, by - br, bx + br, by + br), fill=colour, outline=PLATE, width=max(2, s // 32))
        font = _font(int(br * (1.35 if len(badge_text) == 1 else 1.05)))
        d.text((bx, by), badge_text, fill=(255, 255, 255), font=font, anchor="mm")
    return img.resize((size, size), Image.Resampling.LANCZOS)
