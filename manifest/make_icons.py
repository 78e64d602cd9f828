#!/usr/bin/env python3
"""Draw the Teams app icons (a headset glyph) and write them as PNG files.

    python manifest/make_icons.py            # rewrites manifest/color.png and manifest/outline.png

Pure standard library: the glyph is a union of signed-distance shapes, anti-aliased by the
distance at each pixel centre, so the output is deterministic. The PNGs are committed; run this
again only when the design below changes (tests/deploy checks the files still match it).

- color.png: 192x192, opaque, the accent colour full-bleed with a white glyph (Teams rounds the
  corners itself).
- outline.png: 32x32, white glyph on a transparent background (every pixel is white with some
  alpha, or fully transparent), as Teams requires for the outline icon.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Keep equal to "accentColor" in manifest.json.
ACCENT = (0x0F, 0x6C, 0xBD)
WHITE = (0xFF, 0xFF, 0xFF)

COLOR_SIZE = 192
OUTLINE_SIZE = 32

Rgba = tuple[int, int, int, int]
Sdf = Callable[[float, float], float]


# ---------------------------------------------------------------------------------------------
# Signed distance functions in glyph units (the glyph lives in the unit square, y grows down).
# Negative inside, positive outside.


def _rounded_box(cx: float, cy: float, hw: float, hh: float, r: float) -> Sdf:
    def sdf(x: float, y: float) -> float:
        qx = abs(x - cx) - hw + r
        qy = abs(y - cy) - hh + r
        outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
        inside = min(max(qx, qy), 0.0)
        return outside + inside - r

    return sdf


def _arc(cx: float, cy: float, radius: float, half_width: float, a0: float, a1: float) -> Sdf:
    """A stroked circular arc with round caps, angles in degrees (0 = +x, 90 = +y = down)."""
    lo, hi = math.radians(a0), math.radians(a1)
    ends = [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in (lo, hi)]

    def sdf(x: float, y: float) -> float:
        angle = math.atan2(y - cy, x - cx)
        if angle < lo:
            angle += 2 * math.pi
        if lo <= angle <= hi:
            return abs(math.hypot(x - cx, y - cy) - radius) - half_width
        return min(math.hypot(x - ex, y - ey) for ex, ey in ends) - half_width

    return sdf


def headset(stroke: float) -> Sdf:
    """The glyph: headband, two ear cups, a microphone boom and the microphone.

    ``stroke`` scales the line widths of the headband and the boom.
    """
    shapes = [
        # headband over the top, from the left ear cup to the right one
        _arc(0.5, 0.47, 0.29, 0.045 * stroke, 180.0, 360.0),
        # ear cups
        _rounded_box(0.21, 0.58, 0.075, 0.13, 0.06),
        _rounded_box(0.79, 0.58, 0.075, 0.13, 0.06),
        # microphone boom from the right cup down to the mouth
        _arc(0.57, 0.64, 0.20, 0.026 * stroke, 0.0, 90.0),
        # microphone
        _rounded_box(0.52, 0.84, 0.075, 0.045, 0.045),
    ]

    def sdf(x: float, y: float) -> float:
        return min(shape(x, y) for shape in shapes)

    return sdf


def coverage(sdf: Sdf, size: int, scale: float) -> list[list[float]]:
    """Fraction of each pixel covered by the glyph, glyph scaled by ``scale`` about the centre."""
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            # pixel centre -> glyph units
            gx = 0.5 + ((px + 0.5) / size - 0.5) / scale
            gy = 0.5 + ((py + 0.5) / size - 0.5) / scale
            distance_px = sdf(gx, gy) * scale * size
            row.append(min(1.0, max(0.0, 0.5 - distance_px)))
        rows.append(row)
    return rows


def color_pixels() -> list[list[Rgba]]:
    cover = coverage(headset(stroke=1.0), COLOR_SIZE, scale=0.78)
    return [
        [
            (
                round(ACCENT[0] + (WHITE[0] - ACCENT[0]) * c),
                round(ACCENT[1] + (WHITE[1] - ACCENT[1]) * c),
                round(ACCENT[2] + (WHITE[2] - ACCENT[2]) * c),
                255,
            )
            for c in row
        ]
        for row in cover
    ]


def outline_pixels() -> list[list[Rgba]]:
    cover = coverage(headset(stroke=1.0), OUTLINE_SIZE, scale=1.08)
    return [[(255, 255, 255, round(255 * c)) for c in row] for row in cover]


# ---------------------------------------------------------------------------------------------
# PNG writing (8-bit RGBA, no interlace, filter 0 on every row).


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: list[list[Rgba]]) -> bytes:
    height = len(pixels)
    width = len(pixels[0])
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)),
            _chunk(b"IDAT", zlib.compress(raw, 9)),
            _chunk(b"IEND", b""),
        ]
    )


ICONS: dict[str, Callable[[], list[list[Rgba]]]] = {
    "color.png": color_pixels,
    "outline.png": outline_pixels,
}


def main(argv: list[str] | None = None) -> int:
    out_dir = Path(argv[0]) if argv else HERE
    for name, draw in ICONS.items():
        path = out_dir / name
        path.write_bytes(png_bytes(draw()))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
