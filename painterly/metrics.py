"""Quality metrics the way papers report them (content and style (Gram) loss of a result), and a
measure of periodic artifacts (lattices, checkerboards)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .encoders import VGGEncoder, VGGWeights
from .imageio import MIN_SIDE, ImageLike, load_image, to_tensor
from .losses import PerceptualLoss, gram_matrix


def mixed_grams(encoder: VGGEncoder, styles: Sequence[ImageLike], weights: Sequence[float], size: int,
                layers: Sequence[str], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Weighted sum of the style images' Gram matrices, each image resized to ``size`` (longest side)."""
    grams: dict[str, torch.Tensor] = {}
    for style, w in zip(styles, weights, strict=True):
        feats = encoder(to_tensor(load_image(style, size, min_side=MIN_SIDE), device), list(layers))
        for name in layers:
            g = w * gram_matrix(feats[name])[0]
            grams[name] = grams[name] + g if name in grams else g
    return grams


@torch.no_grad()
def score_stylization(
    output: ImageLike,
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    size: int = 512,
    loss: PerceptualLoss | None = None,
    style_weights: Sequence[float] | None = None,
    style_scale: float = 1.0,
    device: torch.device | str = "cpu",
    encoder: VGGEncoder | None = None,
) -> dict[str, float]:
    """Weighted content, style, TV and total loss of ``output`` for ``content`` and ``styles``, in fp32.

    The content image is resized to ``size`` (longest side), the styles to ``size * style_scale``,
    as :func:`painterly.optimize` prepares its targets; the output is resized to the content's size.
    ``loss`` defaults to the :func:`painterly.optimize` defaults. ``encoder``: a VGG encoder with the
    loss' layers to reuse across calls (default: a new one, weights loaded each call).
    """
    from .methods.optimize import OptimizeConfig, normalize_weights

    loss = loss or OptimizeConfig().loss()
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    weights = normalize_weights(style_weights, len(styles))
    encoder = encoder if encoder is not None else VGGEncoder(loss.layers, weights=VGGWeights()).to(device)
    content_img = load_image(content, size)
    out_img = load_image(output)
    if out_img.size != content_img.size:
        out_img = out_img.resize(content_img.size, resample=3)  # bicubic
    targets = encoder(to_tensor(content_img, device), list(loss.content_layers))
    grams = mixed_grams(encoder, styles, weights, max(16, round(size * style_scale)), list(loss.style_layers), device)
    x = to_tensor(out_img, device)
    terms = loss(x, encoder(x), targets, grams)
    return {k: float(v) for k, v in terms.items()}


def lattice_score(image: ImageLike, period: int = 4) -> float:
    """How strongly ``image`` repeats with a ``period``-pixel lattice: the spectral magnitude of its
    high-passed luminance at that period, over the spectrum's median, averaged over rows and columns.

    About 1-1.5 for natural images and good stylizations; a network whose two 2x upsamplings leave
    visible 4x4 blocks scores 3-5 at period 4 (period 2 measures checkerboards).
    """
    gray = np.asarray(load_image(image).convert("L"), dtype=np.float32)
    if min(gray.shape) < 4 * period:
        raise ValueError(f"image too small to measure a {period}-pixel period")
    hp = gray - 0.25 * (np.roll(gray, 1, 0) + np.roll(gray, -1, 0) + np.roll(gray, 1, 1) + np.roll(gray, -1, 1))
    hp = hp[1:-1, 1:-1]  # the rolls wrap around at the borders
    ratios = []
    for axis in (0, 1):
        n = hp.shape[axis]
        spectrum = np.abs(np.fft.rfft(hp, axis=axis)).mean(axis=1 - axis)
        k = round(n / period)
        ratios.append(float(spectrum[max(1, k - 1) : k + 2].max() / max(float(np.median(spectrum[1:])), 1e-8)))
    return float(np.mean(ratios))
