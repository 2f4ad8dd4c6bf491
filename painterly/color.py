"""Colour preservation (Gatys et al., "Preserving Color in Neural Artistic Style Transfer", 2016).

* ``luminance``: keep the photo's chroma; only the luminance carries the style. For
  feed-forward results this is applied afterwards (the output's Y with the photo's CbCr);
  the optimization method transfers on luminance-only images and then does the same.
* ``histogram``: recolour the style image so its colour mean and covariance match the
  photo's before transfer (or, after the fact, the result's colours to the photo's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

METHODS = ("luminance", "histogram")


def check_method(method: str | None) -> str | None:
    if method not in (None, *METHODS):
        raise ValueError(f"preserve_color must be one of {METHODS} or None, got {method!r}")
    return method


def luminance(img: Image.Image) -> Image.Image:
    """Grayscale (ITU-R 601 luma) as a 3-channel RGB image."""
    return img.convert("L").convert("RGB")


def match_luminance(source: Image.Image, target: Image.Image) -> Image.Image:
    """Luminance of ``source`` with its mean/std shifted to those of ``target``'s luminance."""
    s = np.asarray(source.convert("L"), dtype=np.float64)
    t = np.asarray(target.convert("L"), dtype=np.float64)
    out = (s - s.mean()) / (s.std() + 1e-6) * t.std() + t.mean()
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "L").convert("RGB")


def transfer_luminance(stylized: Image.Image, content: Image.Image) -> Image.Image:
    """The stylized image's luminance (Y) combined with the content's chroma (Cb, Cr)."""
    if stylized.size != content.size:
        content = content.resize(stylized.size, Image.Resampling.BICUBIC)
    y = stylized.convert("YCbCr").getchannel("Y")
    _, cb, cr = content.convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def match_color(source: Image.Image, target: Image.Image) -> Image.Image:
    """Linearly recolour ``source`` so its RGB mean and covariance equal ``target``'s.

    Uses the symmetric (PCA) matrix square root, which avoids the hue rotations a
    Cholesky-based transform can introduce.
    """
    s = np.asarray(source.convert("RGB"), dtype=np.float64).reshape(-1, 3) / 255.0
    t = np.asarray(target.convert("RGB"), dtype=np.float64).reshape(-1, 3) / 255.0
    mu_s, mu_t = s.mean(0), t.mean(0)
    cov_s = np.cov(s, rowvar=False) + 1e-5 * np.eye(3)
    cov_t = np.cov(t, rowvar=False) + 1e-5 * np.eye(3)
    transform = _sqrtm(cov_t) @ np.linalg.inv(_sqrtm(cov_s))
    out = (s - mu_s) @ transform.T + mu_t
    w, h = source.size
    return Image.fromarray(np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8).reshape(h, w, 3), "RGB")


def _sqrtm(cov: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(cov)
    return vecs @ np.diag(np.sqrt(np.clip(vals, 1e-12, None))) @ vecs.T


def preserve_color(stylized: Image.Image, content: Image.Image, method: str | None) -> Image.Image:
    """Post-hoc colour preservation for a finished result (feed-forward and arbitrary methods)."""
    check_method(method)
    if method is None:
        return stylized
    if content.size != stylized.size:
        content = content.resize(stylized.size, Image.Resampling.BICUBIC)
    if method == "luminance":
        return transfer_luminance(stylized, content)
    return match_color(stylized, content)


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> YUV (BT.601), differentiable; useful for losses on luminance."""
    import torch

    m = x.new_tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
    return torch.einsum("ij,bjhw->bihw", m, x)
