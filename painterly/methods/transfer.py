"""Arbitrary style transfer: any painting, one forward pass, no training.

Two methods, both shipped trained (``painterly/pretrained/``):

* ``"adain"`` (Huang & Belongie 2017): the photo's VGG features get the painting's channel
  statistics, a decoder paints the result. ``alpha`` trades content for style in feature space;
  several styles are interpolated with weights; a mask gives each region its own style. Runs on
  onnxruntime (the shipped encoder/decoder graphs, AdaIN itself in numpy) or on torch.
* ``"meta"`` (Shen et al. 2018): a meta network turns the painting into the weights of a small
  transformer network, which then stylizes the photo. Several styles mix their generated
  parameters; a mask composites each style's result per region; ``alpha`` blends the result
  with the photo in pixel space. Torch only.

Masks: a grayscale image of the photo's size (or the same aspect ratio). With ``K`` styles its
gray levels are split into ``K`` equal bands from white to black: white (the foreground) gets
the first style, black the last. With a single style the black region keeps the photo.

Colour preservation: ``"histogram"`` recolours each painting to the photo's colour
distribution before transfer; ``"luminance"`` keeps the photo's colours and takes only the
result's luminance (see :mod:`painterly.color`).
Stroke scale: an output larger than ``1024 / stroke_scale`` px is painted at that working size and
guided-upsampled from the photo (see :mod:`painterly.stroke_scale`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import color
from ..engines import QUALITIES
from ..engines.adain_numpy import normalize_weights
from ..engines.choose import check_engine, fastest, torch_available
from ..errors import ImageError, PainterlyError, torch_required
from ..imageio import IMAGE_EXTENSIONS, ImageLike, attach_alpha, ensure_min_side, from_array, read_image, resize_longest
from ..paintings import bundled_painting
from ..paths import PRETRAINED_DIR, shipped_files
from ..stroke_scale import DEFAULT_STROKE_SCALE, StrokeScale, check_stroke_scale, paint_at_stroke_scale

METHODS = ("adain", "meta")
#: Longest side used when ``size`` is None and the photo is larger than this.
DEFAULT_MAX_SIDE = 1024
#: The shipped AdaIN files per ``quality``, in order of preference: "fast" takes the slim distilled decoder
#: and int8 graphs where shipped, "high" the full decoder in full precision.
ONNX_ENCODERS = {"fast": ("vgg19_relu4_1.int8.onnx", "vgg19_relu4_1.fp32.onnx"),
                 "high": ("vgg19_relu4_1.fp32.onnx", "vgg19_relu4_1.int8.onnx")}
ONNX_DECODERS = {"fast": ("adain_decoder_slim.int8.onnx", "adain_decoder.int8.onnx", "adain_decoder.fp32.onnx"),
                 "high": ("adain_decoder.fp32.onnx", "adain_decoder.int8.onnx")}
TORCH_DECODERS = {"fast": ("adain_decoder_slim.safetensors", "adain_decoder.safetensors"),
                  "high": ("adain_decoder.safetensors",)}
#: Sides of the photo and the painting the automatic engine choice is measured on.
BENCH_SIZES = (256, 128)
#: Names served by the torch engine (:mod:`painterly.engines.torch`), imported on first use.
_TORCH_NAMES = ("prepare", "load_adain", "_prepared", "_run_meta", "_soft_regions")


def resolve_style(style: ImageLike) -> ImageLike:
    """A bundled painting's name (``"starry-night"``) -> its path; anything else unchanged."""
    if isinstance(style, str) and not os.path.exists(style):
        looks_like_file = os.sep in style or "/" in style or Path(style).suffix.lower() in IMAGE_EXTENSIONS
        if not looks_like_file:
            return bundled_painting(style)
    return style


def read_style(style: ImageLike, style_size: int) -> Image.Image:
    """A painting (file, image or bundled name), downscaled so its longest side is at most ``style_size``."""
    img = read_image(resolve_style(style)).rgb
    return ensure_min_side(resize_longest(img, style_size) if max(img.size) > style_size else img)


def read_mask(mask: ImageLike, photo_size: tuple[int, int], size: tuple[int, int], regions: int) -> np.ndarray:
    """Mask image -> one-hot float32 regions (1, regions, H, W) at ``size`` (W, H); see the module docstring.

    The mask must have the photo's size ``photo_size`` or the same aspect ratio (1% tolerance).
    """
    pic = read_image(mask)
    mw, mh = pic.size
    pw, ph = photo_size
    if (mw, mh) != (pw, ph) and abs(math.log((mw / mh) / (pw / ph))) > 0.01:
        raise ImageError(f"mask '{pic.name}' is {mw}x{mh} but the photo is {pw}x{ph}; "
                         "the mask must have the photo's size (or at least its aspect ratio)")
    gray = np.asarray(pic.rgb.convert("L").resize(size, Image.Resampling.NEAREST), dtype=np.float32) / 255.0
    labels = np.clip(np.rint((1.0 - gray) * (regions - 1)), 0, regions - 1).astype(np.int64)
    return (labels[None] == np.arange(regions)[:, None, None]).astype(np.float32)[None]


def _shipped_file(names: Mapping[str, Sequence[str]], quality: str) -> Path | None:
    return next(iter(shipped_files(names, quality, PRETRAINED_DIR)), None)


def _onnx_adain(model: Any, quality: str):
    """The onnxruntime AdaIN: the shipped encoder and ``model`` (an .onnx decoder; None: the shipped one)."""
    from ..engines.onnx import OnnxAdaIN

    if isinstance(model, OnnxAdaIN):
        return model
    encoder = _shipped_file(ONNX_ENCODERS, quality)
    decoder = Path(model) if model is not None else _shipped_file(ONNX_DECODERS, quality)
    if encoder is None or decoder is None:
        raise PainterlyError(f"no shipped ONNX AdaIN {'encoder' if encoder is None else 'decoder'} in {PRETRAINED_DIR}"
                             + ("" if torch_available() else ": install PyTorch (pip install 'painterly[torch]')"))
    return OnnxAdaIN(encoder, decoder)


def _choose_engine(method: str, model: Any, engine: str, quality: str, device: str | None) -> str:
    """``"onnxruntime"`` or ``"torch"`` for this call (see :func:`transfer`)."""
    check_engine(engine)
    if quality not in QUALITIES:
        raise PainterlyError(f"unknown quality '{quality}'; choose from {', '.join(QUALITIES)}")
    is_path = isinstance(model, (str, os.PathLike))
    onnx_model = (is_path and Path(model).suffix.lower() == ".onnx") or type(model).__name__ == "OnnxAdaIN"
    torch_model = model is not None and not onnx_model
    if method == "meta" or torch_model or device not in (None, "auto", "cpu"):
        why = ("the meta method" if method == "meta" else f"the torch model '{model}'" if is_path and torch_model
               else "a loaded torch model" if torch_model else f"device '{device}'")
        if engine == "onnxruntime":
            raise PainterlyError(f"{why} runs on the torch engine only")
        if not torch_available():
            raise torch_required(why)
        return "torch"
    if onnx_model:
        if engine == "torch":
            raise PainterlyError(f"'{model}' is an ONNX model: use --engine onnxruntime (or auto)")
        return "onnxruntime"
    have_onnx = _shipped_file(ONNX_ENCODERS, quality) is not None and _shipped_file(ONNX_DECODERS, quality) is not None
    have_torch = torch_available() and _shipped_file(TORCH_DECODERS, quality) is not None
    if engine != "auto":
        if engine == "torch" and not torch_available():
            raise torch_required("the torch engine")
        return engine
    if not have_torch:
        return "onnxruntime"  # (or a clear error about the missing graphs when it runs)
    if not have_onnx:
        return "torch"
    files = (_shipped_file(ONNX_ENCODERS, quality), _shipped_file(ONNX_DECODERS, quality),
             _shipped_file(TORCH_DECODERS, quality))
    task = "transfer adain " + " ".join(f"{f.name} {f.stat().st_size}" for f in files)
    return fastest(task, _bench_candidates(quality, device))


def _bench_candidates(quality: str, device: str | None) -> dict:
    """Per engine, a factory of one small AdaIN run (see :func:`painterly.engines.choose.fastest`)."""
    rng = np.random.default_rng(0)
    photo, painting = (Image.fromarray((rng.random((s, s, 3)) * 255).astype(np.uint8)) for s in BENCH_SIZES)

    def onnx():
        adain = _onnx_adain(None, quality)
        return lambda: adain.transfer(photo, [painting], 1.0, [1.0])

    def torch():
        from ..engines.torch import prepare, run_transfer

        precision = "fp32" if quality == "high" else "auto"
        net = prepare(_shipped_file(TORCH_DECODERS, quality), "adain", device, precision)
        return lambda: run_transfer("adain", photo, [painting], 1.0, [1.0], None, net, device, precision)

    return {"onnxruntime": onnx, "torch": torch}


def transfer(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    alpha: float = 1.0,
    style_weights: Sequence[float] | None = None,
    mask: ImageLike | None = None,
    preserve_color: str | None = None,
    size: int | None = None,
    method: str = "adain",
    style_size: int = 512,
    model: Any = None,
    device: str | None = None,
    precision: str = "auto",
    *,
    engine: str = "auto",
    quality: str = "fast",
    stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE,
) -> Image.Image:
    """Stylize ``content`` with any painting(s) in one forward pass.

    Args:
        content: the photo (path, PIL image, array or tensor).
        style: a painting (path, image, or a bundled painting's name), or a list of them.
        alpha: 0..1, how much style (0 returns the photo's reconstruction / the photo).
        style_weights: mixing weights for several styles (normalized); not with ``mask``.
        mask: a region mask image, one style per gray band (see the module docstring).
        preserve_color: None, ``"luminance"`` or ``"histogram"``.
        size: longest side of the result (default: the photo's, at most 1024).
        method: ``"adain"`` or ``"meta"`` (torch only).
        style_size: larger paintings are downscaled to this longest side before their statistics
            are taken (the scale of the brush strokes follows it).
        model: None for the shipped weights; a decoder file (``.onnx``: onnxruntime, ``.safetensors``:
            torch) for ``adain``, a meta file for ``meta``; or a loaded ``AdaIN`` / ``MetaNetwork`` (torch).
        device: torch only: None picks CUDA when available. precision: torch only: ``"auto"`` (bf16 where
            fast), ``"bf16"`` or ``"fp32"``.
        engine: ``"auto"`` (the faster one here; onnxruntime without torch), ``"onnxruntime"`` or ``"torch"``.
        quality: ``"fast"`` (the slim decoder and int8 graphs where shipped) or ``"high"`` (the full
            decoder in full precision).
        stroke_scale: stroke size relative to the image: an output larger than ``1024 / stroke_scale`` px
            is painted at that size and guided-upsampled from the photo, keeping the look of the 1024 px
            result (> 1: bolder strokes, < 1: finer). ``None`` or 0: the networks see every output pixel.

    Returns:
        The result as a PIL image (RGBA if the photo had an alpha channel).
    """
    if method not in METHODS:
        raise PainterlyError(f"unknown method '{method}'; choose from {', '.join(METHODS)}")
    _check_options(alpha, preserve_color, size)
    stroke_scale = check_stroke_scale(stroke_scale)
    styles = _style_list(style)
    if mask is not None and style_weights is not None:
        raise PainterlyError("style weights and a mask cannot be combined: the mask decides which style goes where")
    weights = _weights(style_weights, len(styles))
    eng = _choose_engine(method, model, engine, quality, device)

    photo, content_img = _read_photo(content, size)
    paintings = [read_style(s, style_size) for s in styles]
    if preserve_color == "histogram":
        paintings = [color.match_color(p, content_img) for p in paintings]
    adain = _adain_engine(eng, model, quality, device, precision) if method == "adain" else None
    if method != "adain" and precision == "auto" and quality == "high":
        precision = "fp32"

    def paint(img: Image.Image) -> Image.Image:
        work = ensure_min_side(img)  # tiny or very thin photos are processed upscaled
        regions = None if mask is None else read_mask(mask, photo.size, work.size, max(2, len(styles)))
        if adain is not None:
            out = adain.transfer(work, paintings, alpha, weights, regions)
        else:
            from ..engines.torch import run_transfer

            out = run_transfer(method, work, paintings, alpha, weights, regions, model, device, precision)
        return _fit(out, img.size)

    return _finish(paint_at_stroke_scale(content_img, stroke_scale, paint), photo, content_img, preserve_color)


class PreparedTransfer:
    """AdaIN with the engine chosen, the model loaded and the paintings read and encoded once, for many photos
    (the frames of a video): ``prepared(photo)`` is ``transfer(photo, paintings, ...)`` with the options given
    to :func:`prepare_transfer`, without running the VGG encoder on the paintings again (except with
    ``preserve_color="histogram"``, where each photo recolours the paintings)."""

    def __init__(self, engine: Any, paintings: list[Image.Image], weights: list[float], alpha: float,
                 preserve_color: str | None, stroke_scale: float | None = None) -> None:
        self.engine, self.paintings, self.weights = engine, paintings, weights
        self.alpha, self.preserve_color, self.stroke_scale = alpha, preserve_color, stroke_scale
        self.stats = None if preserve_color == "histogram" else [engine.style_stats(p) for p in paintings]

    def __call__(self, content: ImageLike, size: int | None = None) -> Image.Image:
        """``content`` painted (``size``: the longest side of the result; default: the photo's, at most 1024)."""
        if size is not None and size < 16:
            raise PainterlyError(f"size must be at least 16 pixels, got {size}")
        photo, content_img = _read_photo(content, size)
        stats = self.stats
        if stats is None:
            stats = [self.engine.style_stats(color.match_color(p, content_img)) for p in self.paintings]

        def paint(img: Image.Image) -> Image.Image:
            return _fit(self.engine.apply(ensure_min_side(img), stats, self.alpha, self.weights), img.size)

        result = paint_at_stroke_scale(content_img, self.stroke_scale, paint)
        return _finish(result, photo, content_img, self.preserve_color)


def prepare_transfer(style: ImageLike | Sequence[ImageLike], alpha: float = 1.0,
                     style_weights: Sequence[float] | None = None, preserve_color: str | None = None,
                     style_size: int = 512, model: Any = None, device: str | None = None, precision: str = "auto",
                     *, engine: str = "auto", quality: str = "fast",
                     stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE) -> PreparedTransfer:
    """AdaIN ready for many photos: the arguments are :func:`transfer`'s (method ``"adain"``, no mask); the engine
    is chosen, the model loaded and each painting's encoder statistics taken here, once."""
    _check_options(alpha, preserve_color, None)
    stroke_scale = check_stroke_scale(stroke_scale)
    styles = _style_list(style)
    weights = _weights(style_weights, len(styles))
    eng = _choose_engine("adain", model, engine, quality, device)
    paintings = [read_style(s, style_size) for s in styles]
    return PreparedTransfer(_adain_engine(eng, model, quality, device, precision), paintings, weights, float(alpha),
                            preserve_color, stroke_scale)


def _check_options(alpha: float, preserve_color: str | None, size: int | None) -> None:
    if not (0.0 <= float(alpha) <= 1.0):
        raise PainterlyError(f"alpha must be between 0 and 1, got {alpha}")
    try:
        color.check_method(preserve_color)
    except ValueError as exc:
        raise PainterlyError(str(exc)) from None
    if size is not None and size < 16:
        raise PainterlyError(f"size must be at least 16 pixels, got {size}")


def _style_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise PainterlyError("give at least one style image")
    return styles


def _weights(style_weights: Sequence[float] | None, n: int) -> list[float]:
    try:
        return normalize_weights(style_weights, n)
    except ValueError as exc:
        raise PainterlyError(str(exc)) from None


def _adain_engine(eng: str, model: Any, quality: str, device: str | None, precision: str) -> Any:
    """The AdaIN runner of engine ``eng`` (``style_stats``, ``apply``, ``transfer``), its model loaded."""
    if eng == "torch":
        from ..engines.torch import TorchAdaIN

        if precision == "auto" and quality == "high":
            precision = "fp32"
        return TorchAdaIN(model if model is not None else _shipped_file(TORCH_DECODERS, quality), device, precision)
    return _onnx_adain(model, quality)


def _read_photo(content: ImageLike, size: int | None) -> tuple[Any, Image.Image]:
    """The photo as read, and its RGB at the result's size."""
    photo = read_image(content)
    side = size or min(max(photo.size), DEFAULT_MAX_SIDE)
    return photo, resize_longest(photo.rgb, side)


def _fit(out: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """An engine's output as an image of ``size`` (tiny photos were processed upscaled)."""
    result = from_array(out)
    return result if result.size == size else result.resize(size, Image.Resampling.LANCZOS)


def _finish(result: Image.Image, photo: Any, content_img: Image.Image, preserve_color: str | None) -> Image.Image:
    """The painted image as the result: colours kept if asked, the photo's alpha."""
    if preserve_color == "luminance":
        result = color.preserve_color(result, content_img, "luminance")
    return attach_alpha(result, photo.alpha)


def generate_transformer(style: ImageLike, model: Any = None, style_size: int = 512):
    """A single-style transformer for ``style`` (a path, image or bundled painting's name) from the meta network."""
    if not torch_available():
        raise torch_required("the meta network")
    from ..engines.torch import generate_transformer as generate

    return generate(read_style(style, style_size), model)


def __getattr__(name: str):
    """Torch-only names (``prepare``, ``load_adain`` ...), served by :mod:`painterly.engines.torch`."""
    if name in _TORCH_NAMES:
        if not torch_available():
            raise torch_required(f"painterly.methods.transfer.{name}")
        from ..engines import torch as torch_engine

        return getattr(torch_engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
