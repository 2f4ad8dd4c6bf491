"""Stroke scale: strokes sized relative to the image, not in pixels.

A feed-forward network paints strokes of a fixed size in pixels, so the larger the photo, the finer its
strokes look (a 4096 px photo comes out as a dot texture). With a stroke scale ``X`` the network sees the
photo at a working resolution whose longest side is ``REFERENCE_SIDE / X`` (1024 px for ``X = 1``: the look
of a 1024 px result at any output size; ``X > 1`` bolder strokes, ``X < 1`` finer ones), and the result is
brought back to full size by guided upsampling from the full-resolution photo (:mod:`painterly.upsample`).
A photo no larger than the working size is painted at its own size. ``None`` (or ``0``, ``"off"``) turns
it off: the network sees every pixel, as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PIL import Image

from .errors import PainterlyError
from .imageio import MIN_SIDE
from .upsample import guided_upsample

#: The longest side of the working resolution at stroke scale 1: the size the look is calibrated at.
REFERENCE_SIDE = 1024
#: The default stroke scale (the look of the 1024 px result).
DEFAULT_STROKE_SCALE = 1.0
#: Largest stroke scale: the working image keeps at least ``MIN_SIDE`` pixels on its longest side.
MAX_STROKE_SCALE = REFERENCE_SIDE / MIN_SIDE
#: Spellings of "off" (the network sees the full resolution).
OFF = ("0", "off", "none")

StrokeScale = float | str | None


def check_stroke_scale(value: StrokeScale) -> float | None:
    """A valid stroke scale as a float, or None when off (``None``, ``0``, ``"off"``, ``"none"``).

    Raises :class:`PainterlyError` for anything else than a number in (0, ``MAX_STROKE_SCALE``].
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in OFF):
        return None
    hint = f"give a number in (0, {MAX_STROKE_SCALE:g}], or 0 / off for the full resolution"
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise PainterlyError(f"bad stroke scale '{value}': {hint}") from None
    if x == 0:
        return None
    if not (math.isfinite(x) and 0 < x <= MAX_STROKE_SCALE):
        raise PainterlyError(f"bad stroke scale '{value}': {hint}")
    return x


def working_side(stroke_scale: StrokeScale) -> int | None:
    """Longest side of the working resolution, or None when the stroke scale is off."""
    x = check_stroke_scale(stroke_scale)
    return None if x is None else max(MIN_SIDE, round(REFERENCE_SIDE / x))


def working_size(size: tuple[int, int], stroke_scale: StrokeScale) -> tuple[int, int] | None:
    """(W, H) the network sees for an image of ``size`` (W, H), or None when it sees the image as it is
    (stroke scale off, or the image no larger than the working resolution)."""
    side = working_side(stroke_scale)
    w, h = size
    if side is None or max(w, h) <= side:
        return None
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def paint_at_stroke_scale(photo: Image.Image, stroke_scale: StrokeScale,
                          paint: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """``paint`` (an RGB image -> its stylization, same size) applied to ``photo`` at the working resolution
    of ``stroke_scale``, the result guided-upsampled to the photo's size (see the module docstring)."""
    size = working_size(photo.size, stroke_scale)
    if size is None:
        return paint(photo)
    small = photo.resize(size, Image.Resampling.LANCZOS)
    return guided_upsample(paint(small), photo, small)
