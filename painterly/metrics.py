"""Quality metrics the way papers report them: content and style (Gram) loss of a result."""

from __future__ import annotations

from collections.abc import Sequence

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
) -> dict[str, float]:
    """Weighted content, style, TV and total loss of ``output`` for ``content`` and ``styles``, in fp32.

    The content image is resized to ``size`` (longest side), the styles to ``size * style_scale``,
    as :func:`painterly.optimize` prepares its targets; the output is resized to the content's size.
    ``loss`` defaults to the :func:`painterly.optimize` defaults.
    """
    from .methods.optimize import OptimizeConfig, normalize_weights

    loss = loss or OptimizeConfig().loss()
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    weights = normalize_weights(style_weights, len(styles))
    encoder = VGGEncoder(loss.layers, weights=VGGWeights()).to(device)
    content_img = load_image(content, size)
    out_img = load_image(output)
    if out_img.size != content_img.size:
        out_img = out_img.resize(content_img.size, resample=3)  # bicubic
    targets = encoder(to_tensor(content_img, device), list(loss.content_layers))
    grams = mixed_grams(encoder, styles, weights, max(16, round(size * style_scale)), list(loss.style_layers), device)
    x = to_tensor(out_img, device)
    terms = loss(x, encoder(x), targets, grams)
    return {k: float(v) for k, v in terms.items()}
