"""Fast stylization with a trained multi-style network (``painterly.stylize``), on any engine.

The model is a shipped or given file: ``.onnx`` (the onnxruntime engine, no torch needed) or
``.safetensors`` (the torch engine). ``engine="auto"`` picks the faster engine available on this
machine (see :mod:`painterly.engines.choose`); by default the network sees a large photo at a working
resolution that keeps the strokes' size relative to the image, and the result is guided-upsampled back
(see :mod:`painterly.stroke_scale`); large network inputs run in tiles with frozen instance-norm
statistics (see :mod:`painterly.engines.tiling`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..engines import QUALITIES, Stylizer
from ..engines.choose import available, check_engine, fastest, torch_available
from ..engines.tiling import DEFAULT_OVERLAP, DEFAULT_STATS_SIZE, DEFAULT_TILE
from ..errors import ModelError, PainterlyError, StyleNotFoundError, torch_required
from ..imageio import ImageLike, attach_alpha, ensure_min_side, from_array, read_image, resize_longest, to_array
from ..paths import PRETRAINED_DIR, shipped_files
from ..stroke_scale import DEFAULT_STROKE_SCALE, StrokeScale, check_stroke_scale, paint_at_stroke_scale
from ..styles import StyleInfo, StyleSpec

if TYPE_CHECKING:
    from ..models.io import StylizationModel

__all__ = ["DEFAULT_MODELS", "DEFAULT_OVERLAP", "DEFAULT_STATS_SIZE", "DEFAULT_TILE", "get_model", "list_styles",
           "load_stylizer", "style_sheet", "stylize"]

#: The shipped stylization models per ``quality``, in order of preference: the first ONNX file and the first
#: torch file present are the candidates, and the engine choice picks the faster (see :func:`load_stylizer`).
#: "fast": the slim distilled student (int8 on onnxruntime), else the full model (int8); "high": the full
#: model in full precision.
DEFAULT_MODELS = {
    "fast": ("multistyle_slim.int8.onnx", "multistyle_slim.safetensors",
             "multistyle.int8.onnx", "multistyle.fp32.onnx", "multistyle.safetensors"),
    "high": ("multistyle.fp32.onnx", "multistyle.safetensors", "multistyle.int8.onnx"),
}
#: The shipped torch model (also the base that ``painterly train --base shipped`` starts from).
DEFAULT_MODEL = PRETRAINED_DIR / "multistyle.safetensors"

ModelSpec = Any  # a path, a loaded Stylizer / StylizationModel, or None (the shipped model)
#: Side of the image the automatic engine choice is measured on.
BENCH_SIZE = 256


def _is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ".onnx"


def _check_quality(quality: str) -> str:
    if quality not in QUALITIES:
        raise PainterlyError(f"unknown quality '{quality}'; choose from {', '.join(QUALITIES)}")
    return quality


def _torch_stylizer(model: StylizationModel | str | os.PathLike, device, precision: str, quality: str) -> Stylizer:
    if not torch_available():
        raise torch_required(f"the model '{model}' (a torch .safetensors file)")
    from ..engines.torch import TorchStylizer, load_stylization_model
    from ..models.io import StylizationModel

    if not isinstance(model, StylizationModel):
        model = load_stylization_model(model)
    if precision == "auto" and quality == "high":
        precision = "fp32"
    return TorchStylizer(model, device, precision)


def _onnx_stylizer(path: str | os.PathLike) -> Stylizer:
    from ..engines.onnx import load_stylizer as load_onnx

    return load_onnx(path)


def _shipped(quality: str) -> tuple[Path | None, Path | None]:
    """The preferred shipped (ONNX file, torch file) for ``quality``; None where none is installed."""
    files = shipped_files(DEFAULT_MODELS, quality, PRETRAINED_DIR)
    onnx = next((f for f in files if _is_onnx(f)), None)
    torch_file = next((f for f in files if not _is_onnx(f)), None)
    return onnx, torch_file


def _missing_default() -> ModelError:
    return ModelError(f"the pretrained model is missing from {PRETRAINED_DIR}: reinstall painterly, pass --model "
                      "FILE, or train one with 'painterly train --style PAINTING.jpg --data PHOTOS_DIR --out FILE'")


def _bench_runner(stylizer: Stylizer):
    x = np.random.default_rng(0).random((1, 3, BENCH_SIZE, BENCH_SIZE), dtype=np.float32)
    w = np.full(len(stylizer.styles), 1.0 / len(stylizer.styles), dtype=np.float32)
    return lambda: stylizer.run(x, w)


def load_stylizer(model: ModelSpec = None, engine: str = "auto", quality: str = "fast", device=None,
                  precision: str = "auto") -> Stylizer:
    """A stylization model ready to run (see :class:`painterly.engines.Stylizer`).

    ``model``: None (the shipped model), a ``.onnx`` file (onnxruntime), a ``.safetensors`` file or a
    loaded ``StylizationModel`` (torch), or an already loaded stylizer. ``engine``: ``"auto"`` (the
    faster one here; onnxruntime when torch is not installed), ``"onnxruntime"`` or ``"torch"``.
    ``quality``: ``"fast"`` (int8 when shipped) or ``"high"`` (full precision). ``device`` and
    ``precision`` apply to the torch engine only.
    """
    check_engine(engine)
    _check_quality(quality)
    if device not in (None, "auto", "cpu") and engine == "auto":
        engine = "torch"  # a GPU: only torch runs there
    if hasattr(model, "run") and hasattr(model, "styles"):
        return model
    if model is not None and not isinstance(model, (str, os.PathLike)):  # a StylizationModel
        if engine == "onnxruntime":
            raise PainterlyError("a loaded torch model runs on the torch engine; export it to ONNX for onnxruntime")
        return _torch_stylizer(model, device, precision, quality)
    if model is not None:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file '{path}' not found")
        if _is_onnx(path):
            if engine == "torch":
                raise PainterlyError(f"'{path}' is an ONNX model: use --engine onnxruntime (or auto)")
            return _onnx_stylizer(path)
        if engine == "onnxruntime":
            raise PainterlyError(f"'{path}' is a torch model: export it to ONNX (painterly export) "
                                 "or use --engine torch")
        return _torch_stylizer(path, device, precision, quality)
    onnx, torch_file = _shipped(quality)
    if engine == "onnxruntime" or (engine == "auto" and not torch_available()):
        if onnx is None:
            raise ModelError(f"no shipped ONNX stylization model in {PRETRAINED_DIR}"
                             + (": install PyTorch (pip install 'painterly[torch]') to run the torch model"
                                if torch_file is not None and engine == "auto" else ""))
        return _onnx_stylizer(onnx)
    if engine == "torch" or onnx is None:
        if torch_file is None:
            raise _missing_default()
        return _torch_stylizer(torch_file, device, precision, quality)
    if torch_file is None:
        return _onnx_stylizer(onnx)
    loaders = {"onnxruntime": lambda: _onnx_stylizer(onnx),
               "torch": lambda: _torch_stylizer(torch_file, device, precision, quality)}
    task = f"stylize {onnx.name} {onnx.stat().st_size} vs {torch_file.name} {torch_file.stat().st_size} ({quality})"
    best = fastest(task, {name: lambda load=load: _bench_runner(load()) for name, load in loaders.items()})
    return loaders[best]()


def get_model(model: StylizationModel | str | os.PathLike | None = None) -> StylizationModel:
    """The torch :class:`~painterly.models.io.StylizationModel` of a ``.safetensors`` file (None: the shipped one)."""
    from ..models.io import StylizationModel

    if isinstance(model, StylizationModel):
        return model
    path = Path(model) if model is not None else DEFAULT_MODEL
    if not path.is_file():
        raise _missing_default() if model is None else ModelError(f"model file '{path}' not found")
    if not torch_available():
        raise torch_required("loading a torch model")
    from ..engines.torch import load_stylization_model

    return load_stylization_model(path)


def _styles_source(model: ModelSpec) -> Stylizer:
    """The model to list styles of, without choosing an engine (the shipped models share their styles)."""
    if model is None:
        onnx, torch_file = _shipped("fast")
        model = onnx if onnx is not None and available("onnxruntime") else torch_file
        if model is None:
            raise _missing_default()
    return load_stylizer(model)


def list_styles(model: ModelSpec = None) -> list[StyleInfo]:
    """The styles of ``model`` (default: the shipped model), each with ``.name``, ``.title``, ``.artist``."""
    return list(_styles_source(model).styles)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _blend(stylized: Image.Image, photo: Image.Image, strength: float) -> Image.Image:
    if strength >= 1.0:
        return stylized
    if photo.size != stylized.size:
        photo = photo.resize(stylized.size, Image.Resampling.BICUBIC)
    return Image.blend(photo, stylized, strength)


def stylize(
    image: ImageLike,
    style: StyleSpec | None = None,
    size: int | None = None,
    strength: float = 1.0,
    preserve_color: str | None = None,
    model: ModelSpec = None,
    *,
    engine: str = "auto",
    quality: str = "fast",
    device: str | None = None,
    precision: str = "auto",
    tile_size: int = DEFAULT_TILE,
    stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE,
) -> Image.Image:
    """Paint ``image`` in ``style`` with a trained feed-forward model.

    Args:
        image: path, PIL image, array or tensor. EXIF orientation is applied; an alpha channel
            is carried over to the result.
        style: a style name, ``{name: weight}`` to mix styles (weights are normalised) or a
            list of names (equal weights). May be omitted for a single-style model.
        size: longest side to stylize at (default: the image's own size).
        strength: 0..1, blends the result with the (resized) photo.
        preserve_color: ``None``, ``"luminance"`` or ``"histogram"`` (keep the photo's colours).
        model: ``None`` (the shipped model), a ``.onnx`` or ``.safetensors`` file, or a loaded model
            (:func:`load_stylizer`, or a torch ``StylizationModel``).
        engine: ``"auto"`` (the faster engine here), ``"onnxruntime"`` or ``"torch"``.
        quality: ``"fast"`` (the int8 model when shipped) or ``"high"`` (full precision).
        device: torch only: where to run (``None``/``"auto"``: CUDA if available, else CPU).
        precision: torch only: ``"auto"`` (bf16 where fast: AMX CPUs, CUDA), ``"bf16"`` or ``"fp32"``.
        tile_size: network inputs over ``tile_size**2`` pixels run in blended tiles (bounded memory).
        stroke_scale: stroke size relative to the image: the network sees the photo at ``1024 / stroke_scale``
            px on its longest side (when larger) and the result is guided-upsampled to full size, so the
            look of the 1024 px result holds at any size (> 1: bolder strokes, < 1: finer). ``None`` or 0:
            the network sees every pixel (strokes of a fixed size in pixels). See :mod:`painterly.stroke_scale`.
    """
    from ..color import check_method
    from ..color import preserve_color as apply_preserve_color

    check_method(preserve_color)
    if not 0.0 <= float(strength) <= 1.0:
        raise PainterlyError(f"strength must be between 0 and 1, got {strength}")
    if size is not None and int(size) < 16:
        raise PainterlyError(f"size must be at least 16 pixels, got {size}")
    stroke_scale = check_stroke_scale(stroke_scale)
    m = load_stylizer(model, engine, quality, device, precision)
    if style is None:
        if len(m.styles) != 1:
            raise StyleNotFoundError(f"choose a style; available: {', '.join(m.names)}")
        style = m.names[0]
    weights = m.style_weights(style)
    pic = read_image(image)
    photo = resize_longest(pic.rgb, int(size)) if size else pic.rgb

    def paint(img: Image.Image) -> Image.Image:
        out = from_array(m.run(to_array(ensure_min_side(img)), weights, tile_size=tile_size))
        if out.size != img.size:  # a tiny or very thin image, processed upscaled
            out = out.resize(img.size, Image.Resampling.LANCZOS)
        return out

    result = paint_at_stroke_scale(photo, stroke_scale, paint)
    if preserve_color:
        result = apply_preserve_color(result, photo, preserve_color)
    result = _blend(result, photo, float(strength))
    return attach_alpha(result, pic.alpha)


def style_sheet(model: ModelSpec = None, photo: ImageLike | None = None, size: int = 256, ncol: int = 4,
                device: str | None = None) -> Image.Image:
    """A labelled thumbnail sheet: the photo, then the photo in every style of ``model``.

    When a style is a bundled painting, a small copy of the painting is inset in the corner.
    """
    from PIL import ImageDraw

    from ..paintings import bundled_painting, painting_names

    m = load_stylizer(model, device=device)
    if photo is None:
        photo = Path(__file__).resolve().parent.parent / "assets" / "photos" / "lake.jpg"
    base = resize_longest(read_image(photo).rgb, size)
    tiles = [("photo", base)]
    bundled = set(painting_names())
    for info in m.styles:
        img = stylize(base, info.name, model=m)
        if info.name in bundled:
            inset = resize_longest(read_image(bundled_painting(info.name)).rgb, max(16, size // 4))
            img.paste(inset, (img.width - inset.width - 2, img.height - inset.height - 2))
        tiles.append((info.name, img))
    label_h, pad = 18, 4
    w, h = base.size
    ncol = max(1, min(ncol, len(tiles)))
    nrow = math.ceil(len(tiles) / ncol)
    sheet = Image.new("RGB", (ncol * (w + pad) + pad, nrow * (h + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (name, img) in enumerate(tiles):
        r, c = divmod(k, ncol)
        x, y = pad + c * (w + pad), pad + r * (h + label_h + pad)
        sheet.paste(img, (x, y))
        draw.text((x + 2, y + h + 3), name, fill=(0, 0, 0))
    return sheet


def __getattr__(name: str):
    """Torch-only names of the former module (``run_network``), imported on first use."""
    if name == "run_network":
        if not torch_available():
            raise torch_required(f"painterly.methods.stylize.{name}")
        from ..engines import torch as torch_engine

        return getattr(torch_engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
