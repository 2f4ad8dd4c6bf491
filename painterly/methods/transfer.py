"""Arbitrary style transfer: any painting, one forward pass, no training.

Two methods, both shipped trained (``painterly/pretrained/``):

* ``"adain"`` (Huang & Belongie 2017): the photo's VGG features get the painting's channel
  statistics, a decoder paints the result. ``alpha`` trades content for style in feature space;
  several styles are interpolated with weights; a mask gives each region its own style.
* ``"meta"`` (Shen et al. 2018): a meta network turns the painting into the weights of a small
  transformer network, which then stylizes the photo. Several styles mix their generated
  parameters; a mask composites each style's result per region; ``alpha`` blends the result
  with the photo in pixel space.

Masks: a grayscale image of the photo's size (or the same aspect ratio). With ``K`` styles its
gray levels are split into ``K`` equal bands from white to black: white (the foreground) gets
the first style, black the last. With a single style the black region keeps the photo.

Colour preservation: ``"histogram"`` recolours each painting to the photo's colour
distribution before transfer; ``"luminance"`` keeps the photo's colours and takes only the
result's luminance (see :mod:`painterly.color`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .. import color
from ..errors import ImageError, PainterlyError
from ..imageio import (
    IMAGE_EXTENSIONS,
    ImageLike,
    attach_alpha,
    ensure_min_side,
    read_image,
    resize_longest,
    to_pil,
    to_tensor,
)
from ..models.adain import AdaIN, load_decoder, normalize_weights
from ..models.meta import MetaNetwork, load_meta, style_statistics
from ..models.transformer import TransformerNet
from ..paintings import bundled_painting
from ..runtime import resolve_device, resolve_precision

METHODS = ("adain", "meta")
#: Longest side used when ``size`` is None and the photo is larger than this.
DEFAULT_MAX_SIDE = 1024


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


def read_mask(mask: ImageLike, photo_size: tuple[int, int], size: tuple[int, int], regions: int) -> torch.Tensor:
    """Mask image -> one-hot regions (1, regions, H, W) at ``size`` (W, H); see the module docstring.

    The mask must have the photo's size ``photo_size`` or the same aspect ratio (1% tolerance).
    """
    pic = read_image(mask)
    mw, mh = pic.size
    pw, ph = photo_size
    if (mw, mh) != (pw, ph) and abs(math.log((mw / mh) / (pw / ph))) > 0.01:
        raise ImageError(f"mask '{pic.name}' is {mw}x{mh} but the photo is {pw}x{ph}; "
                         "the mask must have the photo's size (or at least its aspect ratio)")
    gray = pic.rgb.convert("L").resize(size, Image.Resampling.NEAREST)
    g = to_tensor(gray.convert("RGB"))[:, :1]  # (1, 1, H, W) in [0, 1]
    labels = torch.round((1.0 - g) * (regions - 1)).long().clamp(0, regions - 1)
    return F.one_hot(labels[:, 0], regions).permute(0, 3, 1, 2).float()


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    return x


def _is_ready(module: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> bool:
    p = next(module.parameters(), None)
    return p is not None and not module.training and p.device == device and p.dtype == (dtype or torch.float32)


def _prepared(module: torch.nn.Module, device: torch.device, dtype: torch.dtype | None,
              fresh: bool = False) -> torch.nn.Module:
    """An inference version of ``module`` on ``device``: bf16 weights and channels_last when bf16 is the fast
    path, in-place ReLUs. A module that is already prepared is used as is; others are copied (unless
    ``fresh``: created for this call) so the caller's model is never changed."""
    if _is_ready(module, device, dtype):
        return module
    if not fresh:
        module = copy.deepcopy(module)
    module = module.eval().requires_grad_(False).to(device)
    if dtype is not None:
        module = module.to(dtype=dtype, memory_format=torch.channels_last)
    for m in module.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = True  # inference only, and no conv output is ever returned here: saves a full copy per layer
    return module


def prepare(model: AdaIN | MetaNetwork | str | os.PathLike | None = None, method: str = "adain",
            device: str | None = None, precision: str = "auto") -> AdaIN | MetaNetwork:
    """Load (None: the shipped weights) and convert a model once, for many :func:`transfer` calls.

    ``transfer(..., model=prepare())`` skips loading and the per-call bf16 copy of the weights.
    Pass the same ``device`` and ``precision`` to :func:`transfer`.
    """
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    if method == "adain":
        return _prepared(load_adain(model), dev, dtype, fresh=not isinstance(model, AdaIN))
    if method == "meta":
        meta = model if isinstance(model, MetaNetwork) else load_meta(model)
        return meta.to(dev).eval()
    raise PainterlyError(f"unknown method '{method}'; choose from {', '.join(METHODS)}")


def _as_input(img: Image.Image, device: torch.device, dtype: torch.dtype | None, multiple: int) -> torch.Tensor:
    x = _pad_to(to_tensor(img, device), multiple)
    if dtype is not None:
        x = x.to(dtype=dtype).contiguous(memory_format=torch.channels_last)
    return x


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
    model: AdaIN | MetaNetwork | str | os.PathLike | None = None,
    device: str | None = None,
    precision: str = "auto",
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
        method: ``"adain"`` or ``"meta"``.
        style_size: larger paintings are downscaled to this longest side before their statistics
            are taken (the scale of the brush strokes follows it).
        model: a loaded :class:`AdaIN` / :class:`MetaNetwork`, a weights file (decoder file for
            ``adain``, meta file for ``meta``), or None for the shipped weights.
        device: None picks CUDA when available. precision: ``"auto"`` (bf16 where fast),
            ``"bf16"`` or ``"fp32"``.

    Returns:
        The result as a PIL image (RGBA if the photo had an alpha channel).
    """
    if method not in METHODS:
        raise PainterlyError(f"unknown method '{method}'; choose from {', '.join(METHODS)}")
    if not (0.0 <= float(alpha) <= 1.0):
        raise PainterlyError(f"alpha must be between 0 and 1, got {alpha}")
    try:
        color.check_method(preserve_color)
    except ValueError as exc:
        raise PainterlyError(str(exc)) from None
    if size is not None and size < 16:
        raise PainterlyError(f"size must be at least 16 pixels, got {size}")
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise PainterlyError("give at least one style image")
    if mask is not None and style_weights is not None:
        raise PainterlyError("style weights and a mask cannot be combined: the mask decides which style goes where")
    try:
        weights = normalize_weights(style_weights, len(styles))
    except ValueError as exc:
        raise PainterlyError(str(exc)) from None

    photo = read_image(content)
    side = size or min(max(photo.size), DEFAULT_MAX_SIDE)
    content_img = resize_longest(photo.rgb, side)
    work = ensure_min_side(content_img)  # tiny or very thin photos are processed upscaled
    paintings = [read_style(s, style_size) for s in styles]
    if preserve_color == "histogram":
        paintings = [color.match_color(p, content_img) for p in paintings]
    regions = None
    if mask is not None:
        regions = read_mask(mask, photo.size, work.size, max(2, len(styles)))

    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    with torch.no_grad():  # not inference_mode: the VGG weight cache must not hold inference tensors
        if method == "adain":
            out = _run_adain(work, paintings, alpha, weights, regions, model, dev, dtype)
        else:
            out = _run_meta(work, paintings, alpha, weights, regions, model, dev, dtype)
    result = to_pil(out.float().clamp(0, 1)[..., : work.size[1], : work.size[0]].cpu())
    if result.size != content_img.size:
        result = result.resize(content_img.size, Image.Resampling.LANCZOS)
    if preserve_color == "luminance":
        result = color.preserve_color(result, content_img, "luminance")
    return attach_alpha(result, photo.alpha)


def load_adain(model: AdaIN | str | os.PathLike | None = None) -> AdaIN:
    """The AdaIN model with the decoder from ``model`` (a file; None: the shipped decoder)."""
    return model if isinstance(model, AdaIN) else AdaIN(load_decoder(model))


def _run_adain(content: Image.Image, paintings: list[Image.Image], alpha: float, weights: list[float],
               regions: torch.Tensor | None, model, device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
    if isinstance(model, MetaNetwork):
        raise PainterlyError("method 'adain' needs an AdaIN decoder, got a meta network")
    net = _prepared(load_adain(model), device, dtype, fresh=not isinstance(model, AdaIN))
    stats = [net.style_stats(_as_input(p, device, dtype, 1)) for p in paintings]
    if regions is not None and len(stats) == 1:
        stats.append(None)  # single style + mask: the black region keeps the photo
    x = _as_input(content, device, dtype, 8)
    if regions is not None:
        regions = _pad_to(regions.to(device), 8)
    return net.decode(net.encode(x), stats, alpha, weights if regions is None else None, regions)


def _run_meta(content: Image.Image, paintings: list[Image.Image], alpha: float, weights: list[float],
              regions: torch.Tensor | None, model, device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
    if isinstance(model, AdaIN):
        raise PainterlyError("method 'meta' needs a meta network, got an AdaIN model")
    meta = model if isinstance(model, MetaNetwork) else load_meta(model)
    meta = meta.to(device).eval()
    encoder = _prepared(meta.stats_encoder(), device, dtype, fresh=True)
    layers = list(meta.config.stat_layers)
    params = [meta(style_statistics(encoder(_as_input(p, device, dtype, 1), layers), layers)) for p in paintings]
    x = _as_input(content, device, dtype, 4)
    photo = x.float()
    if regions is None:
        mixed = {k: sum(w * p[k] for w, p in zip(weights, params, strict=True)) for k in params[0]}
        out = _prepared(meta.transformer(mixed), device, dtype, fresh=True)(x).float()
    else:
        soft = _soft_regions(_pad_to(regions.to(device), 4))
        outs = [_prepared(meta.transformer(p), device, dtype, fresh=True)(x).float() for p in params]
        if len(outs) == 1:
            outs.append(photo)  # single style + mask: the black region keeps the photo
        out = sum(soft[:, k : k + 1] * o for k, o in enumerate(outs))
    return alpha * out + (1.0 - alpha) * photo if alpha < 1.0 else out


def _soft_regions(regions: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Slightly blurred region masks (still summing to 1) so region borders do not show a seam."""
    k = 2 * radius + 1
    blurred = F.avg_pool2d(F.pad(regions, (radius,) * 4, mode="replicate"), k, stride=1)
    return blurred / blurred.sum(dim=1, keepdim=True).clamp_min(1e-8)


def generate_transformer(style: ImageLike, model: MetaNetwork | str | os.PathLike | None = None,
                         style_size: int = 512) -> TransformerNet:
    """A single-style transformer for ``style`` (a path, image or bundled painting's name) from the meta network."""
    meta = model if isinstance(model, MetaNetwork) else load_meta(model)
    painting = read_style(style, style_size)
    return meta.generate(to_tensor(painting), meta.stats_encoder())
