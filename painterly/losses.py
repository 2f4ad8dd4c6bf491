"""Perceptual losses on encoder features.

Normalisation (so numbers compare across image sizes and batch sizes):

* content loss of a layer: squared error relative to the target's energy,
  ``sum((F - P)^2) / sum(P^2)``, averaged over the batch.
* Gram matrix: ``G = F F^T / (C * H * W)`` for features ``F`` of shape (C, H*W).
* style loss of a layer: relative squared Frobenius distance of Gram matrices,
  ``sum((G - A)^2) / sum(A^2)``, averaged over the batch.

The relative forms make every layer contribute on the same scale (raw VGG activations
differ by orders of magnitude between relu1_1 and relu4_1) and make a loss of 1.0 mean
"as far from the target as the zero image".
* mean/std style loss (AdaIN): ``mse(mean_F, mean_S) + mse(std_F, std_S)`` over channels.
* total variation: mean absolute difference between neighbouring pixels.

A loss over several layers is the weighted sum of its per-layer losses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

LayerWeights = Mapping[str, float]


def _pixels_by_channels(feat: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> a (B, HW, C) view: free for channels_last features (no transposing copy)."""
    b, c, h, w = feat.shape
    if feat.is_contiguous(memory_format=torch.channels_last) and not feat.is_contiguous():
        return feat.permute(0, 2, 3, 1).reshape(b, h * w, c)
    return feat.reshape(b, c, h * w).transpose(1, 2)


class _Gram(torch.autograd.Function):
    """``f^T f`` for ``f`` (B, N, C), with the one-product backward ``f (dG + dG^T)`` of a symmetric
    result (autograd's generic bmm backward does two products and sums them)."""

    @staticmethod
    def forward(ctx, f: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        return torch.bmm(f.transpose(1, 2), f)

    @staticmethod
    def backward(ctx, dg: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (f,) = ctx.saved_tensors
        dg = dg.to(f.dtype)
        return torch.bmm(f, dg + dg.transpose(1, 2))


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrices in fp32, normalised by C*H*W.

    The product runs in the features' dtype (bf16 under autocast, accumulated in fp32) on a
    (B, HW, C) view that matches their memory layout (free for channels_last), so the gradient
    comes back in the features' own layout and autograd adds it to the next layer's gradient
    without a strided transpose.
    """
    b, c, h, w = feat.shape
    f = _pixels_by_channels(feat)
    if torch.is_autocast_enabled(f.device.type):
        f = f.to(torch.get_autocast_dtype(f.device.type))
    g = _Gram.apply(f)
    return g.to(torch.promote_types(g.dtype, torch.float32)) / (c * h * w)


class _MeanStd(torch.autograd.Function):
    """Channel mean and std of ``f`` (B, N, C), computed in (at least) fp32, with a one-pass fused backward
    ``dx = gm / N + gs (x - mean) / (N std)`` in the features' dtype and memory layout."""

    @staticmethod
    def forward(ctx, f: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        var, mean = torch.var_mean(f.to(torch.promote_types(f.dtype, torch.float32)), dim=1, unbiased=False)
        std = (var + eps).sqrt()
        ctx.save_for_backward(f, mean, std)
        return mean, std

    @staticmethod
    def backward(ctx, gm: torch.Tensor | None, gs: torch.Tensor | None):  # type: ignore[override]
        f, mean, std = ctx.saved_tensors
        n = f.shape[1]
        gm = torch.zeros_like(mean) if gm is None else gm.to(mean.dtype)
        a = torch.zeros_like(std) if gs is None else gs.to(std.dtype) / (n * std)
        b = gm / n - a * mean
        return torch.addcmul(b.unsqueeze(1), f, a.unsqueeze(1)).to(f.dtype), None


def calc_mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-wise mean and standard deviation (biased variance + ``eps``), each (B, C, 1, 1) in fp32.

    Works on the (B, HW, C) view that matches channels_last features (free, like
    :func:`gram_matrix`), so neither the forward nor the gradient transposes them.
    """
    b, c, h, w = feat.shape
    f = _pixels_by_channels(feat)
    mean, std = _MeanStd.apply(f, eps)
    return mean.view(b, c, 1, 1), std.view(b, c, 1, 1)


def content_loss(feat: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Relative squared error ``sum((F - P)^2) / sum(P^2)`` per image, batch-averaged."""
    f, p = feat.float(), target.float()  # keeps the memory layout: no transposing copy of channels_last
    dims = tuple(range(1, f.dim()))
    return ((f - p).pow(2).sum(dims) / (p.pow(2).sum(dims) + eps)).mean()


def style_loss(feat: torch.Tensor, target_gram: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Relative squared Frobenius distance ``sum((G - A)^2) / sum(A^2)`` of Gram matrices.

    ``target_gram`` is (C, C) or (B, C, C); a single target broadcasts over the batch.
    """
    a = target_gram.float()
    diff = gram_matrix(feat) - a
    return (diff.pow(2).sum(dim=(-2, -1)) / (a.pow(2).sum(dim=(-2, -1)) + eps)).mean()


def mean_std_loss(feat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """AdaIN's style loss: MSE of channel means plus MSE of channel standard deviations."""
    fm, fs = calc_mean_std(feat)
    tm, ts = calc_mean_std(target)
    return F.mse_loss(fm, tm) + F.mse_loss(fs, ts)


def total_variation(img: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between horizontally and vertically adjacent pixels."""
    dh = (img[..., 1:, :] - img[..., :-1, :]).abs().mean()
    dw = (img[..., :, 1:] - img[..., :, :-1]).abs().mean()
    return dh + dw


def _uniform(layers: Sequence[str]) -> dict[str, float]:
    return {name: 1.0 / len(layers) for name in layers}


@dataclass
class PerceptualLoss:
    """Content + style (Gram) + TV loss configuration, evaluated on one shared encoder pass.

    Per-layer weights are relative and normalised to sum to 1 within content and within style;
    ``content_weight``, ``style_weight`` and ``tv_weight`` then scale the three terms.
    """

    content_layers: LayerWeights = field(default_factory=lambda: {"relu4_2": 1.0})
    style_layers: LayerWeights = field(
        default_factory=lambda: _uniform(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
    )
    content_weight: float = 1.0
    style_weight: float = 20.0
    tv_weight: float = 0.0

    def __post_init__(self) -> None:
        self.content_layers = _normalised(self.content_layers)
        self.style_layers = _normalised(self.style_layers)

    @property
    def layers(self) -> list[str]:
        """Every encoder layer this loss reads."""
        return list(dict.fromkeys([*self.content_layers, *self.style_layers]))

    def content(self, feats: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(w * content_loss(feats[n], targets[n]) for n, w in self.content_layers.items())

    def style(self, feats: Mapping[str, torch.Tensor], grams: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(w * style_loss(feats[n], grams[n]) for n, w in self.style_layers.items())

    def __call__(
        self,
        image: torch.Tensor,
        feats: Mapping[str, torch.Tensor],
        content_targets: Mapping[str, torch.Tensor],
        style_grams: Mapping[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Weighted terms and their sum: ``{"content", "style", "tv", "total"}``."""
        c = self.content_weight * self.content(feats, content_targets)
        s = self.style_weight * self.style(feats, style_grams)
        tv = self.tv_weight * total_variation(image.float()) if self.tv_weight else image.new_zeros(())
        return {"content": c, "style": s, "tv": tv, "total": c + s + tv}


def _normalised(weights: LayerWeights | Sequence[str]) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        weights = {name: 1.0 for name in weights}
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("layer weights must sum to a positive number")
    return {name: float(w) / total for name, w in weights.items()}
