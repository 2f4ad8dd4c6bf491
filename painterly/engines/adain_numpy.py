"""AdaIN feature arithmetic in numpy, for the onnxruntime engine (the torch twin is painterly.models.adain).

Channel statistics use the biased variance plus ``eps`` under the square root, like the torch path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Stats = tuple[np.ndarray, np.ndarray]
EPS = 1e-5


def mean_std(feat: np.ndarray, eps: float = EPS) -> Stats:
    """Channel mean and std of (1, C, H, W) features, each (1, C, 1, 1) float32 (accumulated in float64)."""
    f = feat.astype(np.float64)
    mean = f.mean(axis=(2, 3), keepdims=True)
    var = f.var(axis=(2, 3), keepdims=True)
    return mean.astype(np.float32), np.sqrt(var + eps).astype(np.float32)


def masked_mean_std(feat: np.ndarray, weight: np.ndarray, eps: float = EPS) -> Stats:
    """Channel mean/std of ``feat`` (1, C, H, W) weighted by ``weight`` (1, 1, H, W) >= 0."""
    f, w = feat.astype(np.float64), weight.astype(np.float64)
    total = max(float(w.sum()), 1e-8)
    mean = (f * w).sum(axis=(2, 3), keepdims=True) / total
    var = (np.square(f - mean) * w).sum(axis=(2, 3), keepdims=True) / total
    return mean.astype(np.float32), np.sqrt(var + eps).astype(np.float32)


def region_weights(regions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One-hot masks (1, K, H, W) -> soft weights (1, K, h, w) summing to 1 per cell (area averaging;
    H and W must be whole multiples of ``size``)."""
    _, k, hh, ww = regions.shape
    h, w = size
    if hh % h or ww % w:
        raise ValueError(f"mask size {hh}x{ww} is not a multiple of the feature size {h}x{w}")
    soft = regions.astype(np.float32).reshape(1, k, h, hh // h, w, ww // w).mean(axis=(3, 5))
    return soft / np.maximum(soft.sum(axis=1, keepdims=True), 1e-8)


def adain(content: np.ndarray, stats: Stats, content_stats: Stats | None = None) -> np.ndarray:
    """``content`` with the channel statistics ``stats`` (its own statistics: ``content_stats`` or computed)."""
    c_mean, c_std = content_stats if content_stats is not None else mean_std(content)
    scale = stats[1] / c_std
    return content * scale + (stats[0] - c_mean * scale)


def stylize_features(content: np.ndarray, styles: Sequence[Stats | None], weights: Sequence[float] | None = None,
                     regions: np.ndarray | None = None, alpha: float = 1.0) -> np.ndarray:
    """The decoder's input: the AdaIN target for one or more styles, blended with the content by ``alpha``.

    Without ``regions`` the styles' statistics are mixed with ``weights`` (normalised, summing to 1);
    with ``regions`` (1, K, H, W) one-hot masks, style k fills region k (``None``: keep the photo there),
    each region's content statistics taken over that region only.
    """
    if regions is None:
        w = normalize_weights(weights, len(styles))
        mean = sum(wk * s[0] for wk, s in zip(w, styles, strict=True))
        std = sum(wk * s[1] for wk, s in zip(w, styles, strict=True))
        target = adain(content, (mean, std))
    else:
        soft = region_weights(regions, content.shape[-2:])
        target = np.zeros_like(content, dtype=np.float32)
        for k, stats in enumerate(styles):
            wk = soft[:, k : k + 1]
            if float(wk.sum()) <= 0:
                continue
            part = content if stats is None else adain(content, stats, masked_mean_std(content, wk))
            target += wk * part
    if alpha >= 1.0:
        return target.astype(np.float32)
    return (alpha * target + (1.0 - alpha) * content).astype(np.float32)


def normalize_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Style mixing weights -> non-negative shares summing to 1 (``None``: equal shares)."""
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise ValueError(f"got {len(weights)} style weights for {n} style images")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise ValueError("style weights must be non-negative and not all zero")
    total = sum(weights)
    return [w / total for w in weights]
