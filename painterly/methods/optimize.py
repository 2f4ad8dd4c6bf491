"""Optimization-based style transfer (Gatys, Ecker & Bethge 2016).

The output image itself is optimized so that its VGG features match the photo's (content)
and its Gram matrices match the paintings' (style). Coarse-to-fine: the image is first
optimized at low resolution, upsampled, and refined, which reaches a given loss much
faster than optimizing at full size from the start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .. import color
from ..encoders import VGGEncoder, VGGWeights
from ..imageio import (
    ImageLike,
    attach_alpha,
    ensure_min_side,
    read_image,
    resize_longest,
    save_image,
    to_pil,
    to_tensor,
)
from ..losses import PerceptualLoss, gram_matrix
from ..runtime import autocast, resolve_device, resolve_precision

#: Style layers of Gatys et al.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)

Callback = Callable[[int, torch.Tensor, dict[str, float]], None]


@dataclass
class OptimizeConfig:
    """Settings of :func:`optimize`; every field can also be passed as a keyword."""

    size: int | None = 512  #: longest side of the output (None: the photo's own size)
    steps: int = 100  #: optimizer iterations at each scale
    optimizer: str = "lbfgs"  #: "lbfgs" or "adam"
    lr: float | None = None  #: step size (default 1.0 for L-BFGS, 0.02 for Adam)
    init: str = "content"  #: "content", "noise" or "style"
    scales: int = 2  #: coarse-to-fine levels, each half the size of the next
    style_scale: float = 1.0  #: style image size relative to the output size
    content_weight: float = 1.0
    style_weight: float = 20.0
    tv_weight: float = 0.0
    content_layers: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CONTENT_LAYERS, 1.0))
    style_layers: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STYLE_LAYERS, 1.0))
    pooling: str = "max"
    preserve_color: str | None = None  #: None, "luminance" or "histogram"
    seed: int | None = 0
    precision: str = "auto"  #: "auto" (bf16 where fast), "bf16" or "fp32"
    device: str | None = None  #: None picks CUDA when available
    save_every: int = 0  #: write intermediate images every N steps (needs save_dir)
    save_dir: str | None = None
    progress: bool = True
    weights: VGGWeights = field(default_factory=VGGWeights)
    max_pixels: int | None = 100_000_000

    def validate(self) -> None:
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.init not in ("content", "noise", "style"):
            raise ValueError(f"init must be 'content', 'noise' or 'style', got {self.init!r}")
        if self.steps < 1 or self.scales < 1:
            raise ValueError("steps and scales must be at least 1")
        if self.size is not None and self.size < 16:
            raise ValueError("size must be at least 16 pixels")
        if self.style_scale <= 0:
            raise ValueError("style_scale must be positive")
        color.check_method(self.preserve_color)

    def loss(self) -> PerceptualLoss:
        return PerceptualLoss(
            content_layers=self.content_layers,
            style_layers=self.style_layers,
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            tv_weight=self.tv_weight,
        )


def scale_sizes(size: int, scales: int, minimum: int = 64) -> list[int]:
    """Longest sides of the coarse-to-fine pyramid, smallest first, e.g. 512, 3 -> [128, 256, 512]."""
    return [max(min(minimum, size), round(size / 2**k)) for k in reversed(range(scales))]


def normalize_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Style mixing weights -> non-negative shares summing to 1."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"got {len(weights)} style weights for {n} style images")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise ValueError("style weights must be non-negative and not all zero")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


class StyleTarget:
    """Mixed Gram-matrix targets of one or more style images, computed at a given size."""

    def __init__(self, encoder: VGGEncoder, styles: Sequence[Image.Image], weights: Sequence[float],
                 layers: Sequence[str], device: torch.device, dtype: torch.dtype | None) -> None:
        self.grams: dict[str, torch.Tensor] = {}
        for img, w in zip(styles, weights, strict=True):
            with torch.no_grad(), autocast(device, dtype):
                feats = encoder(to_tensor(img, device), layers)
            for name in layers:
                g = w * gram_matrix(feats[name])[0]
                self.grams[name] = self.grams[name] + g if name in self.grams else g


def _as_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(style, (list, tuple)):
        if not style:
            raise ValueError("at least one style image is required")
        return list(style)
    return [style]


def optimize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    style_weights: Sequence[float] | None = None,
    config: OptimizeConfig | None = None,
    callback: Callback | None = None,
    **options,
) -> Image.Image:
    """Stylize ``content`` with one or more ``style`` images by direct optimization.

    Args:
        content: photo (path, PIL image, array or tensor).
        style: a painting, or a list of paintings mixed by ``style_weights``.
        style_weights: each style's share of the style target (normalised).
        config: an :class:`OptimizeConfig`; keyword ``options`` override its fields
            (e.g. ``size=512, steps=300, scales=2, preserve_color="luminance"``).
        callback: called as ``callback(step, image, losses)`` after every step.

    Returns:
        The result as a PIL image (RGBA if the photo had an alpha channel).
    """
    valid = {f.name for f in fields(OptimizeConfig)}
    unknown = set(options) - valid
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    cfg = replace(config or OptimizeConfig(), **options)
    cfg.validate()
    styles = _as_list(style)
    weights = normalize_weights(style_weights, len(styles))

    photo = read_image(content, cfg.max_pixels)
    paintings = [read_image(s, cfg.max_pixels).rgb for s in styles]
    size = cfg.size or max(photo.size)
    content_img = resize_longest(photo.rgb, size)
    if cfg.preserve_color == "luminance":
        work_content = color.luminance(content_img)
        paintings = [color.match_luminance(p, content_img) for p in paintings]
    elif cfg.preserve_color == "histogram":
        work_content = content_img
        paintings = [color.match_color(p, content_img) for p in paintings]
    else:
        work_content = content_img

    result = run(work_content, paintings, weights, cfg, callback)
    out = to_pil(result)
    if cfg.preserve_color == "luminance":
        out = color.transfer_luminance(out, content_img)
    return attach_alpha(out, photo.alpha)


def run(
    content: Image.Image,
    styles: Sequence[Image.Image],
    weights: Sequence[float],
    cfg: OptimizeConfig,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Coarse-to-fine optimization on prepared PIL images; returns a (1, 3, H, W) tensor in [0, 1]."""
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    loss_fn = cfg.loss()
    encoder = VGGEncoder(loss_fn.layers, weights=cfg.weights, pooling=cfg.pooling).to(device)
    encoder.channels_last(dtype is not None or device.type == "cuda")
    generator = torch.Generator().manual_seed(cfg.seed) if cfg.seed is not None else None  # not the global RNG

    sizes = scale_sizes(max(content.size), cfg.scales)
    bar = tqdm(total=cfg.steps * len(sizes), desc="optimize", unit="step", disable=not cfg.progress,
               dynamic_ncols=True)
    image: torch.Tensor | None = None
    try:
        for level, size in enumerate(sizes):
            scaled = resize_longest(content, size)
            c = to_tensor(ensure_min_side(scaled), device)  # tiny or thin images: processed upscaled
            with torch.no_grad(), autocast(device, dtype):
                content_targets = {k: v.float() for k, v in encoder(c, list(loss_fn.content_layers)).items()}
            style_size = max(16, round(size * cfg.style_scale))
            target = StyleTarget(encoder, [ensure_min_side(resize_longest(s, style_size)) for s in styles], weights,
                                 list(loss_fn.style_layers), device, dtype)
            if image is None:
                image = _initial_image(cfg.init, c, styles, generator)
            else:
                image = F.interpolate(image, size=c.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
            bar.set_description(f"optimize {c.shape[-1]}x{c.shape[-2]}")
            objective = _Objective(encoder, loss_fn, content_targets, target.grams, device, dtype)
            image = _optimize_level(image, objective, cfg, bar, callback, first_step=level * cfg.steps)
    finally:
        bar.close()
    assert image is not None
    w, h = scaled.size
    if image.shape[-2:] != (h, w):  # processed upscaled: back to the content's size
        image = F.interpolate(image, size=(h, w), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    return image.cpu()


class _Objective:
    """Loss of an image against fixed content and style targets; remembers the last terms."""

    def __init__(self, encoder: VGGEncoder, loss_fn: PerceptualLoss, content_targets: dict[str, torch.Tensor],
                 grams: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype | None) -> None:
        self.encoder, self.loss_fn = encoder, loss_fn
        self.content_targets, self.grams = content_targets, grams
        self.device, self.dtype = device, dtype
        self.last: dict[str, float] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.dtype):
            feats = self.encoder(x)
        terms = self.loss_fn(x, feats, self.content_targets, self.grams)
        self.last = {k: float(v.detach()) for k, v in terms.items()}
        return terms["total"]


def _optimize_level(image: torch.Tensor, objective: _Objective, cfg: OptimizeConfig, bar: tqdm,
                    callback: Callback | None, first_step: int) -> torch.Tensor:
    """Run ``cfg.steps`` optimizer iterations on one scale, starting from ``image``."""
    x = image.detach().clone().contiguous().requires_grad_(True)
    x.register_hook(lambda g: g.contiguous())  # L-BFGS flattens grads with view()
    opt = _make_optimizer(cfg, x)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = objective(x)
        loss.backward()
        return loss

    for step in range(first_step + 1, first_step + cfg.steps + 1):
        opt.step(closure)
        losses = objective.last
        if not math.isfinite(losses["total"]):
            raise FloatingPointError("loss became NaN/inf; try a smaller --lr or --precision fp32")
        bar.set_postfix(loss=f"{losses['total']:.4g}", content=f"{losses['content']:.3g}",
                        style=f"{losses['style']:.3g}", refresh=False)
        bar.update(1)
        if callback is not None:
            callback(step, x.detach(), losses)
        if cfg.save_every and cfg.save_dir and step % cfg.save_every == 0:
            save_image(to_pil(x.detach().clamp(0, 1)), Path(cfg.save_dir) / f"step_{step:05d}.png")
    return x.detach().clamp(0, 1)


def _initial_image(init: str, content: torch.Tensor, styles: Sequence[Image.Image],
                   generator: torch.Generator | None) -> torch.Tensor:
    if init == "content":
        return content.clone()
    if init == "noise":
        noise = torch.rand(content.shape, generator=generator)
        return noise.to(content.device)
    h, w = content.shape[-2:]
    return to_tensor(styles[0].resize((w, h), Image.Resampling.BICUBIC), content.device)


def _make_optimizer(cfg: OptimizeConfig, x: torch.Tensor) -> torch.optim.Optimizer:
    if cfg.optimizer == "lbfgs":
        # One iteration per step() call; the optimizer keeps its curvature history between calls.
        return torch.optim.LBFGS([x], lr=cfg.lr or 1.0, max_iter=1, history_size=50)
    return torch.optim.Adam([x], lr=cfg.lr or 0.02)
