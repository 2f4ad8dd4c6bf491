"""Preview grids of training samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image


def image_grid(images: torch.Tensor | Sequence[torch.Tensor], ncol: int, pad: int = 2) -> Image.Image:
    """Tile images (each (3, H, W) in [0, 1], same size) into a PIL grid with ``ncol`` columns."""
    imgs = [t.detach().float().cpu().clamp(0, 1) for t in images]
    if not imgs:
        raise ValueError("no images for the grid")
    h, w = imgs[0].shape[-2:]
    nrow = math.ceil(len(imgs) / ncol)
    canvas = torch.ones(3, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for k, t in enumerate(imgs):
        r, c = divmod(k, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[:, y : y + h, x : x + w] = t[:, :h, :w]
    arr = (canvas * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")
