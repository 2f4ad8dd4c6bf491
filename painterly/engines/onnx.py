"""The onnxruntime engine: cached sessions, every physical core, tiling in numpy. No torch.

Model files follow the ONNX contract (``painterly.onnx.stylize.v1``, ``painterly.onnx.vgg_encoder.v1``,
``painterly.onnx.adain_decoder.v1``): their ``"painterly"`` metadata says what they are.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import MissingDependencyError, ModelError
from ..imageio import to_array
from ..styles import StyleInfo, StyleSpec, style_weights
from .adain_numpy import mean_std, stylize_features
from .cpu import physical_cores
from .tiling import DEFAULT_OVERLAP, DEFAULT_STATS_SIZE, DEFAULT_TILE, pad_to_multiple, run_tiled

FORMATS = {"stylize": "painterly.onnx.stylize.v1", "encoder": "painterly.onnx.vgg_encoder.v1",
           "decoder": "painterly.onnx.adain_decoder.v1"}
STYLIZE_INPUTS = ("image", "style", "stats", "use_stats")


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("the onnxruntime engine needs the onnxruntime package: pip install onnxruntime"
                                     ) from None
    return onnxruntime


def threads() -> int:
    """Intra-op threads: ``$PAINTERLY_THREADS`` or ``$OMP_NUM_THREADS`` if set, else the physical cores."""
    for var in ("PAINTERLY_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return physical_cores()


@functools.lru_cache(maxsize=8)
def _session(path: str, mtime_ns: int, size: int):
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: no warnings about unused initializers etc.
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types on damaged or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"'{path}' is not a valid ONNX model (corrupt or wrong format: {first[:160]})") from None


def session(path: str | os.PathLike):
    """A cached onnxruntime session for ``path`` (reloaded when the file changes)."""
    p = Path(path)
    if not p.is_file():
        hint = " (the shipped models are missing from this installation)" if p.parent.name == "pretrained" else ""
        raise ModelError(f"ONNX model file '{p}' not found{hint}")
    st = p.stat()
    return _session(str(p.resolve()), st.st_mtime_ns, st.st_size)


def metadata(sess: Any, path: str | os.PathLike, kind: str) -> dict[str, Any]:
    """The ``"painterly"`` metadata of a session's model, checked to be of ``kind`` (stylize/encoder/decoder)."""
    props = sess.get_modelmeta().custom_metadata_map or {}
    try:
        meta = json.loads(props["painterly"])
    except (KeyError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMATS[kind]:
        raise ModelError(f"'{path}' is not a painterly {kind} ONNX model (format {FORMATS[kind]})")
    return meta


class OnnxStylizer:
    """A ``painterly.onnx.stylize.v1`` model on onnxruntime (see :class:`painterly.engines.Stylizer`)."""

    engine = "onnxruntime"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.session = session(path)
        self.meta = metadata(self.session, path, "stylize")
        inputs = {i.name: i for i in self.session.get_inputs()}
        if any(name not in inputs for name in STYLIZE_INPUTS):
            raise ModelError(f"'{path}': the graph lacks the inputs {', '.join(STYLIZE_INPUTS)}")
        try:
            self.styles = [StyleInfo.from_dict(s) for s in self.meta["styles"]]
            self.stats_size = int(self.meta["stats_size"])
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"'{path}': its painterly metadata lacks styles or stats_size") from None
        n = inputs["style"].shape[-1]
        if not self.styles or (isinstance(n, int) and n != len(self.styles)):
            raise ModelError(f"'{path}': {len(self.styles)} style names for a style input of {inputs['style'].shape}")
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
        self.encoder, self.decoder = session(encoder), session(decoder)
        metadata(self.encoder, encoder, "encoder")
        metadata(self.decoder, decoder, "decoder")
        self._enc_in = self.encoder.get_inputs()[0].name
        self._dec_in = self.decoder.get_inputs()[0].name

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) RGB in [0, 1], H and W multiples of 8 -> relu4_1 features (1, 512, H/8, W/8)."""
        return self.encoder.run(None, {self._enc_in: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def decode(self, features: np.ndarray) -> np.ndarray:
        """Features (1, 512, h, w) -> image (1, 3, 8h, 8w) in [0, 1]."""
        return self.decoder.run(None, {self._dec_in: np.ascontiguousarray(features, dtype=np.float32)})[0]

    def transfer(self, content: Image.Image, paintings: list[Image.Image], alpha: float, weights: list[float],
                 regions: np.ndarray | None = None) -> np.ndarray:
        """AdaIN of ``content`` with the paintings' statistics, mixed by ``weights`` (normalised) or one per
        ``regions`` mask (1, K, H, W) at the content's size (one style: the last region keeps the photo).
        Returns the (1, 3, H, W) float32 result in [0, 1]."""
        stats: list = [mean_std(self.encode(to_array(p))) for p in paintings]
        if regions is not None and len(stats) == 1:
            stats.append(None)  # single style + mask: the black region keeps the photo
        w, h = content.size
        features = self.encode(pad_to_multiple(to_array(content), 8))
        masks = None if regions is None else pad_to_multiple(regions, 8)
        target = stylize_features(features, stats, weights if masks is None else None, masks, alpha)
        return np.clip(self.decode(target)[..., :h, :w], 0.0, 1.0)


@functools.lru_cache(maxsize=4)
def _stylizer(path: str, mtime_ns: int) -> OnnxStylizer:
    return OnnxStylizer(path)


def load_stylizer(path: str | os.PathLike) -> OnnxStylizer:
    """A cached :class:`OnnxStylizer` for ``path``."""
    p = Path(path)
    if not p.is_file():
        session(p)  # raises the not-found error
    return _stylizer(str(p.resolve()), p.stat().st_mtime_ns)
