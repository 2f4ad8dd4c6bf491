"""The onnxruntime engine: cached sessions, every physical core, tiling in numpy. No torch.

Model files follow the ONNX contract (``painterly.onnx.stylize.v1``, ``painterly.onnx.vgg_encoder.v1``,
``painterly.onnx.adain_decoder.v1``), checked on load by :mod:`painterly.onnxfile`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import MissingDependencyError, ModelError
from ..imageio import to_array
from ..onnxfile import open_session
from ..styles import StyleInfo, StyleSpec, style_weights
from .adain_numpy import Stats, mean_std, stylize_features
from .threads import intra_op_threads
from .tiling import DEFAULT_OVERLAP, DEFAULT_STATS_SIZE, DEFAULT_TILE, pad_to_multiple, run_tiled


def threads() -> int:
    """Intra-op threads (see :func:`painterly.engines.threads.intra_op_threads`)."""
    return intra_op_threads()


@functools.lru_cache(maxsize=8)
def _open(path: str, kind: str, mtime_ns: int, size: int, nthreads: int) -> tuple[Any, dict[str, Any]]:
    return open_session(path, kind, threads=nthreads, optimization="all")


def session(path: str | os.PathLike, kind: str) -> tuple[Any, dict[str, Any]]:
    """A cached onnxruntime session for the painterly ``kind`` graph ``path`` and its checked metadata
    (reopened when the file changes); missing, corrupt or foreign files raise :class:`ModelError`."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the onnxruntime engine needs the onnxruntime package: pip install onnxruntime"
                                     ) from None
    p = Path(path)
    if not p.is_file():
        hint = " (the shipped models are missing from this installation)" if p.parent.name == "pretrained" else ""
        raise ModelError(f"ONNX model file '{p}' not found{hint}")
    st = p.stat()
    return _open(str(p.resolve()), kind, st.st_mtime_ns, st.st_size, threads())


class OnnxStylizer:
    """A ``painterly.onnx.stylize.v1`` model on onnxruntime (see :class:`painterly.engines.Stylizer`)."""

    engine = "onnxruntime"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.session, self.meta = session(path, "stylize")
        self.styles = [StyleInfo.from_dict(s) for s in self.meta["styles"]]
        self.stats_size = int(self.meta["stats_size"])
        n = self.session.get_inputs()[1].shape[-1]
        if isinstance(n, int) and n != len(self.styles):
            raise ModelError(f"'{path}': {len(self.styles)} style names for a style input of width {n}")
        self.precision = str(self.meta.get("precision", "fp32"))

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.styles]

    def style_weights(self, style: StyleSpec) -> np.ndarray:
        return style_weights(self.names, style, self.path)

    def forward(self, x: np.ndarray, weights: np.ndarray, stats: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """One pass on (1, 3, h, w) with h, w multiples of 4; frozen instance-norm ``stats`` if given."""
        feeds = {
            "image": x,
            "style": np.asarray(weights, dtype=np.float32).reshape(1, -1),
            "stats": np.zeros((1, self.stats_size), np.float32) if stats is None else stats,
            "use_stats": np.array([0.0 if stats is None else 1.0], dtype=np.float32),
        }
        y, stats_out = self.session.run(["output", "stats_out"], feeds)
        return y, stats_out

    def run(self, x: np.ndarray, weights: np.ndarray, tile_size: int = DEFAULT_TILE,
            overlap: int = DEFAULT_OVERLAP, stats_size: int = DEFAULT_STATS_SIZE) -> np.ndarray:
        """Stylize ``x`` (1, 3, H, W) float32 in [0, 1]; large images in tiles. Returns (1, 3, H, W)."""
        return run_tiled(lambda xi, st: self.forward(xi, weights, st), x, tile_size, overlap, stats_size)


class OnnxAdaIN:
    """The AdaIN encoder and decoder graphs (``vgg_encoder.v1`` / ``adain_decoder.v1``) on onnxruntime."""

    engine = "onnxruntime"

    def __init__(self, encoder: str | os.PathLike, decoder: str | os.PathLike) -> None:
        self.encoder_path, self.path = str(encoder), str(decoder)
        (self.encoder, _), (self.decoder, _) = session(encoder, "encoder"), session(decoder, "decoder")

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) RGB in [0, 1], H and W multiples of 8 -> relu4_1 features (1, 512, H/8, W/8)."""
        return self.encoder.run(None, {"image": np.ascontiguousarray(x, dtype=np.float32)})[0]

    def decode(self, features: np.ndarray) -> np.ndarray:
        """Features (1, 512, h, w) -> image (1, 3, 8h, 8w) in [0, 1]."""
        return self.decoder.run(None, {"features": np.ascontiguousarray(features, dtype=np.float32)})[0]

    def style_stats(self, painting: Image.Image) -> Stats:
        """A painting's relu4_1 channel mean and std (each (1, 512, 1, 1)): taken once per painting."""
        return mean_std(self.encode(to_array(painting)))

    def apply(self, content: Image.Image, stats: Sequence[Stats | None], alpha: float, weights: Sequence[float],
              regions: np.ndarray | None = None) -> np.ndarray:
        """AdaIN of ``content`` with paintings' ``stats``, mixed by ``weights`` (normalised) or one per ``regions``
        mask (1, K, H, W) at the content's size (one style: the last region keeps the photo).
        Returns the (1, 3, H, W) float32 result in [0, 1]."""
        stats = list(stats)
        if regions is not None and len(stats) == 1:
            stats.append(None)  # single style + mask: the black region keeps the photo
        w, h = content.size
        features = self.encode(pad_to_multiple(to_array(content), 8))
        masks = None if regions is None else pad_to_multiple(regions, 8)
        target = stylize_features(features, stats, weights if masks is None else None, masks, alpha)
        return np.clip(self.decode(target)[..., :h, :w], 0.0, 1.0)

    def transfer(self, content: Image.Image, paintings: list[Image.Image], alpha: float, weights: list[float],
                 regions: np.ndarray | None = None) -> np.ndarray:
        """:meth:`apply` with the statistics of ``paintings``."""
        return self.apply(content, [self.style_stats(p) for p in paintings], alpha, weights, regions)


@functools.lru_cache(maxsize=4)
def _stylizer(path: str, mtime_ns: int, nthreads: int) -> OnnxStylizer:
    return OnnxStylizer(path)


def load_stylizer(path: str | os.PathLike) -> OnnxStylizer:
    """A cached :class:`OnnxStylizer` for ``path`` (and the current :func:`threads`)."""
    p = Path(path)
    if not p.is_file():
        session(p, "stylize")  # raises the not-found error
    return _stylizer(str(p.resolve()), p.stat().st_mtime_ns, threads())
