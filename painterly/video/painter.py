"""The per-frame stylizer: a trained style (``painterly.stylize``) or any painting (``painterly.transfer``),
with the model loaded once for the whole video, at the video's stroke scale (see :mod:`painterly.stroke_scale`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..errors import PainterlyError
from ..stroke_scale import DEFAULT_STROKE_SCALE, StrokeScale

Painter = Callable[[np.ndarray], np.ndarray]


def _engine_kwargs(fn: Callable, engine: str | None) -> dict:
    """``{"engine": engine}`` for an API that takes it; without one (torch only) "auto"/"torch" need no argument."""
    if engine in (None, ""):
        return {}
    if "engine" in inspect.signature(fn).parameters:
        return {"engine": engine}
    if engine in ("auto", "torch"):
        return {}
    raise PainterlyError(f"engine '{engine}' is not available in this version of painterly (torch only)")


def style_painter(style: str | Mapping[str, float] | Sequence[str] | None, strength: float = 1.0,
                  preserve_color: str | None = None, model: Any = None, engine: str | None = None,
                  stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE) -> Painter:
    """Frames painted by a trained feed-forward model (the shipped one unless ``model``)."""
    from ..methods import stylize as st

    kwargs = _engine_kwargs(st.stylize, engine)
    if hasattr(st, "load_stylizer"):  # the engine-aware API: load once, on the chosen engine
        loaded = st.load_stylizer(model, **kwargs)
        kwargs = {}
    else:
        loaded = st.get_model(model)
    kwargs["stroke_scale"] = stroke_scale
    st.stylize(Image.new("RGB", (16, 16)), style, strength=strength, preserve_color=preserve_color,
               model=loaded, **kwargs)  # unknown styles and bad options fail before any decoding

    def paint(frame: np.ndarray) -> np.ndarray:
        img = st.stylize(Image.fromarray(frame), style, strength=strength, preserve_color=preserve_color,
                         model=loaded, **kwargs)
        return np.asarray(img.convert("RGB"))

    return paint


def painting_painter(painting: Any, strength: float = 1.0, preserve_color: str | None = None,
                     model: Any = None, engine: str | None = None, style_size: int = 512,
                     stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE) -> Painter:
    """Frames painted like ``painting`` (a file, image or bundled name) by AdaIN; ``strength`` is its alpha."""
    from ..methods import transfer as tr

    kwargs = {**_engine_kwargs(tr.transfer, engine), "stroke_scale": stroke_scale}
    picture = tr.read_style(painting, style_size)  # read once; transfer() downscales no further
    if model is None and "engine" not in inspect.signature(tr.transfer).parameters:
        model = tr.prepare()  # the torch-only API: convert the weights once, not per frame

    def paint(frame: np.ndarray) -> np.ndarray:
        img = tr.transfer(Image.fromarray(frame), picture, alpha=strength, preserve_color=preserve_color,
                          size=max(frame.shape[:2]), style_size=style_size, model=model, **kwargs)
        return np.asarray(img.convert("RGB"))

    return paint
