"""The per-frame stylizer: a trained style (``painterly.stylize``) or any painting (``painterly.transfer``),
with the model loaded once for the whole video, at the video's stroke scale (see :mod:`painterly.stroke_scale`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..stroke_scale import DEFAULT_STROKE_SCALE, StrokeScale

Painter = Callable[[np.ndarray], np.ndarray]


def style_painter(style: str | Mapping[str, float] | Sequence[str] | None, strength: float = 1.0,
                  preserve_color: str | None = None, model: Any = None, engine: str | None = None,
                  stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE) -> Painter:
    """Frames painted by a trained feed-forward model: by default the one :func:`painterly.stylize` picks (the
    "fast" quality's first shipped file, on the faster engine here), loaded once."""
    from ..methods import stylize as st

    loaded = st.load_stylizer(model, engine or "auto")  # the model and engine painterly.stylize would use
    st.stylize(Image.new("RGB", (16, 16)), style, strength=strength, preserve_color=preserve_color,
               model=loaded, stroke_scale=stroke_scale)  # unknown styles and bad options fail before any decoding

    def paint(frame: np.ndarray) -> np.ndarray:
        img = st.stylize(Image.fromarray(frame), style, strength=strength, preserve_color=preserve_color,
                         model=loaded, stroke_scale=stroke_scale)
        return np.asarray(img.convert("RGB"))

    return paint


def painting_painter(painting: Any, strength: float = 1.0, preserve_color: str | None = None,
                     model: Any = None, engine: str | None = None, style_size: int = 512,
                     stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE) -> Painter:
    """Frames painted like ``painting`` (a file, image or bundled name) by AdaIN; ``strength`` is its alpha.
    The painting is read and its encoder statistics taken once (:func:`painterly.methods.transfer.prepare_transfer`),
    not per frame."""
    from ..methods import transfer as tr

    prepared = tr.prepare_transfer(painting, alpha=strength, preserve_color=preserve_color, style_size=style_size,
                                   model=model, engine=engine or "auto", stroke_scale=stroke_scale)

    def paint(frame: np.ndarray) -> np.ndarray:
        return np.asarray(prepared(Image.fromarray(frame), size=max(frame.shape[:2])).convert("RGB"))

    return paint
