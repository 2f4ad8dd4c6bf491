"""How a model runs: onnxruntime (no torch) or torch, and the automatic choice between them.

Every engine's stylizer has the same small interface (see :class:`Stylizer`): its styles, a
style-weight vector from a style spec, and ``run`` on a float32 (1, 3, H, W) array in [0, 1].
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..styles import StyleInfo

ENGINES = ("auto", "onnxruntime", "torch")
QUALITIES = ("fast", "high")


class Stylizer(Protocol):
    """A loaded stylization model on one engine."""

    engine: str
    styles: list[StyleInfo]
    path: str | None

    @property
    def names(self) -> list[str]: ...

    def style_weights(self, style) -> np.ndarray: ...

    def run(self, x: np.ndarray, weights: np.ndarray, tile_size: int = ...) -> np.ndarray: ...
