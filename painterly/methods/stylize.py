"""Fast stylization with a trained multi-style network (``painterly.stylize``).

Large images are processed in overlapping tiles so memory stays bounded: the instance-norm
statistics are first collected on the whole image (or, when it is larger than ``stats_size``,
on a downscaled copy) and then frozen for every tile, so all tiles are normalised alike; tiles
overlap, the outputs near a tile's inner edge (inside the network's receptive field) get zero
weight and the rest is blended with raised-cosine ramps, normalised to sum to one. The tiled result
matches the untiled one away from the image border up to rounding, and no seams show.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image

from ..errors import ModelError, PainterlyError, StyleNotFoundError
from ..imageio import MIN_SIDE, ImageLike, attach_alpha, ensure_min_side, read_image, resize_longest, to_pil, to_tensor
from ..models.io import StylizationModel, load_model
from ..models.transformer import NormStats, TransformerNet, pad_to_multiple
from ..runtime import autocast, resolve_device, resolve_precision
from ..styles import StyleInfo

#: The shipped multi-style model.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "pretrained" / "multistyle.safetensors"

#: Images with more pixels than ``tile_size ** 2`` are processed in tiles.
DEFAULT_TILE = 1024
#: Minimum tile overlap: per inner tile edge a dead zone of a third (more than the full network's
#: receptive-field radius of about 58 px) and a cosine ramp of a third.
DEFAULT_OVERLAP = 192
#: Longest side of the copy the instance-norm statistics are computed on for tiled images.
DEFAULT_STATS_SIZE = 1024

StyleSpec = str | Mapping[str, float] | Sequence[str]
ModelSpec = StylizationModel | str | os.PathLike | None


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> StylizationModel:
    return load_model(path)


def get_model(model: ModelSpec = None) -> StylizationModel:
    """A loaded model: ``None`` (the shipped one), a path, or a :class:`StylizationModel`."""
    if isinstance(model, StylizationModel):
        return model
    path = Path(model) if model is not None else DEFAULT_MODEL
    if not path.is_file():
        if model is None:
            raise ModelError(f"the pretrained model {path} is missing: reinstall painterly, pass --model FILE, or "
                             "train one with 'painterly train --style PAINTING.jpg --data PHOTOS_DIR --out FILE'")
        raise ModelError(f"model file '{path}' not found")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)


def list_styles(model: ModelSpec = None) -> list[StyleInfo]:
    """The styles of ``model`` (default: the shipped model), each with ``.name``, ``.title``, ``.artist``."""
    return list(get_model(model).styles)


# --------------------------------------------------------------------------------------------
# Running the network, untiled or tiled
# --------------------------------------------------------------------------------------------


def _axis_tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Tile (start, end) along one axis; starts are multiples of 4 and ends cover ``length``."""
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    starts = [min(length - tile, 4 * round(i * (length - tile) / (n - 1) / 4)) for i in range(n)]
    return [(s, s + tile) for s in starts]


def _edge_ramp(dist: torch.Tensor, dead: int, ramp: int) -> torch.Tensor:
    """Weight by distance from a tile's inner edge: 0 within ``dead`` pixels (inside the network's
    receptive field, where the tile border shows), then a raised cosine rising to 1 over ``ramp``."""
    t = ((dist - dead + 0.5) / max(1, ramp)).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def _axis_weights(tiles: list[tuple[int, int]], device: torch.device, overlap: int = DEFAULT_OVERLAP
                  ) -> list[torch.Tensor]:
    """Per-tile 1-D blend weights, normalised so they sum to one at every position.

    Any two adjacent tiles overlap by at least ``overlap``; a third of it is each tile's dead
    zone and a third its ramp, so every pixel has a tile whose output there is exact.
    """
    length = tiles[-1][1]
    dead = ramp = overlap // 3
    pos = torch.arange(length, device=device, dtype=torch.float32)
    raw = []
    for s, e in tiles:
        w = torch.zeros(length, device=device)
        p = pos[s:e]
        w[s:e] = 1.0
        if s > 0:
            w[s:e] *= _edge_ramp(p - s, dead, ramp)
        if e < length:
            w[s:e] *= _edge_ramp(e - 1 - p, dead, ramp)
        raw.append(w)
    total = torch.stack(raw).sum(0)
    return [(w / total)[s:e] for w, (s, e) in zip(raw, tiles, strict=True)]


def run_network(
    net: TransformerNet,
    x: torch.Tensor,
    style: torch.Tensor,
    dtype: torch.dtype | None = None,
    tile_size: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    stats_size: int = DEFAULT_STATS_SIZE,
    channels_last: bool = True,
) -> torch.Tensor:
    """Stylize ``x`` (1, 3, H, W) in [0, 1] with style weights ``style`` (N,); returns (1, 3, H, W) fp32.

    Images over ``tile_size ** 2`` pixels run in overlapping tiles (see the module docstring).
    """
    device = next(net.parameters()).device
    # .contiguous(): imageio.to_tensor returns a permuted HWC view whose odd strides send the
    # bf16 channels_last convolutions down a path 2-3x slower.
    x = x.to(device).contiguous()
    style = style.to(device).view(1, -1)
    h, w = x.shape[-2:]
    xp, _ = pad_to_multiple(x, 4)
    if h * w <= tile_size * tile_size:
        return _forward(net, xp, style, dtype, channels_last)[..., :h, :w]
    tile_size = max(4 * math.ceil(tile_size / 4), 3 * 4 * math.ceil(overlap / 12) + 4)
    overlap = 4 * math.ceil(overlap / 4)
    # Instance-norm statistics from the whole image, or a downscaled copy of it.
    proxy = xp
    if max(h, w) > stats_size:
        scale = stats_size / max(h, w)
        size = (max(MIN_SIDE, 4 * round(h * scale / 4)), max(MIN_SIDE, 4 * round(w * scale / 4)))  # thin: wider
        proxy = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    stats = NormStats("collect")
    _forward(net, proxy, style, dtype, channels_last, stats)
    hp, wp = xp.shape[-2:]
    rows, cols = _axis_tiles(hp, tile_size, overlap), _axis_tiles(wp, tile_size, overlap)
    wr, wc = _axis_weights(rows, device, overlap), _axis_weights(cols, device, overlap)
    out = torch.zeros(1, 3, hp, wp, device=device)
    for (r0, r1), wy in zip(rows, wr, strict=True):
        for (c0, c1), wx in zip(cols, wc, strict=True):
            y = _forward(net, xp[..., r0:r1, c0:c1], style, dtype, channels_last, stats.replay())
            out[..., r0:r1, c0:c1].addcmul_(y, wy[:, None] * wx[None, :])
            del y
    return out[..., :h, :w].clamp_(0, 1)


def _forward(net: TransformerNet, x: torch.Tensor, style: torch.Tensor, dtype: torch.dtype | None,
             channels_last: bool, norm: NormStats | None = None) -> torch.Tensor:
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(x.device, dtype):
        y = net(x, style, norm)
    return y.float().contiguous()


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
    device: str | torch.device | None = None,
    precision: str = "auto",
    tile_size: int = DEFAULT_TILE,
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
        model: ``None`` (the shipped model), a model file, or a loaded :class:`StylizationModel`.
        device: where to run (``None``/``"auto"``: CUDA if available, else CPU).
        precision: ``"auto"`` (bf16 where fast: AMX CPUs, CUDA), ``"bf16"`` or ``"fp32"``.
        tile_size: images over ``tile_size**2`` pixels run in blended tiles (bounded memory).
    """
    from ..color import check_method
    from ..color import preserve_color as apply_preserve_color

    check_method(preserve_color)
    if not 0.0 <= float(strength) <= 1.0:
        raise PainterlyError(f"strength must be between 0 and 1, got {strength}")
    if size is not None and int(size) < 16:
        raise PainterlyError(f"size must be at least 16 pixels, got {size}")
    m = get_model(model)
    if style is None:
        if len(m.styles) != 1:
            raise StyleNotFoundError(f"choose a style; available: {', '.join(m.names)}")
        style = m.names[0]
    weights = m.style_weights(style)
    pic = read_image(image)
    photo = resize_longest(pic.rgb, int(size)) if size else pic.rgb
    dev = resolve_device(None if device in (None, "auto") else str(device))
    m.net.eval()
    if next(m.net.parameters()).device != dev:
        m.net.to(dev)  # the model stays on the device it was last used on
    net = m.net
    dtype = resolve_precision(precision, dev)
    out = run_network(net, to_tensor(ensure_min_side(photo)), weights, dtype=dtype, tile_size=tile_size)
    result = to_pil(out)
    if result.size != photo.size:  # a tiny or very thin image, processed upscaled
        result = result.resize(photo.size, Image.Resampling.LANCZOS)
    if preserve_color:
        result = apply_preserve_color(result, photo, preserve_color)
    result = _blend(result, photo, float(strength))
    return attach_alpha(result, pic.alpha)


def style_sheet(model: ModelSpec = None, photo: ImageLike | None = None, size: int = 256, ncol: int = 4,
                device: str | torch.device | None = None) -> Image.Image:
    """A labelled thumbnail sheet: the photo, then the photo in every style of ``model``.

    When a style is a bundled painting, a small copy of the painting is inset in the corner.
    """
    from PIL import ImageDraw

    from ..paintings import painting_names

    m = get_model(model)
    if photo is None:
        photo = Path(__file__).resolve().parent.parent / "assets" / "photos" / "lake.jpg"
    base = resize_longest(read_image(photo).rgb, size)
    tiles = [("photo", base)]
    bundled = set(painting_names())
    for info in m.styles:
        img = stylize(base, info.name, model=m, device=device)
        if info.name in bundled:
            from ..paintings import bundled_painting

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
