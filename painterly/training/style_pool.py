"""Style images for arbitrary-style training (AdaIN decoder, meta network), heavily augmented.

With only a dozen paintings, a network that must handle *any* painting would memorise them.
:class:`StylePool` therefore serves random square crops at several scales (1x to 3x
downscaling: brush strokes at different sizes), horizontal flips, colour jitter (brightness,
contrast, saturation, hue: new palettes from the same textures), and, with probability
``photo_prob``, a photo crop as an extra "style" (photos have statistics no painting has).
Paintings named in ``hold_out`` are never served; they are kept aside to measure
generalization.

Sampling draws only from the step's generator, so ``--resume`` stays exact.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import PainterlyError
from ..imageio import MIN_SIDE, find_images, load_image, to_tensor
from ..styles import style_name
from .data import ContentDataset


def hue_rotate(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB images ``x`` (B, 3, H, W) by ``turns`` (B,) of a full circle (YIQ rotation)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          dtype=torch.float64)
    to_rgb = torch.linalg.inv(to_yiq).to(x)  # inverted on the CPU: no linear-algebra kernels on the GPU
    to_yiq = to_yiq.to(x)
    theta = turns.to(x) * 2 * math.pi
    cos, sin = theta.cos(), theta.sin()
    rot = torch.zeros(x.shape[0], 3, 3, dtype=x.dtype, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = to_rgb @ rot @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", m, x)


def color_jitter(x: torch.Tensor, generator: torch.Generator, prob: float = 0.8, brightness: float = 0.2,
                 contrast: float = 0.3, saturation: float = 0.4, hue: float = 0.08) -> torch.Tensor:
    """Random brightness/contrast/saturation/hue changes per image (B, 3, H, W) in [0, 1]."""
    b = x.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(b, generator=generator)).to(x.device).view(b, 1, 1, 1)

    apply = (torch.rand(b, generator=generator) < prob).to(x.device).view(b, 1, 1, 1)
    br, ct, sat = u(1 - brightness, 1 + brightness), u(1 - contrast, 1 + contrast), u(1 - saturation, 1 + saturation)
    turns = u(-hue, hue).view(b)
    y = x * br
    gray = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3])
    y = (y - gray.mean(dim=(2, 3), keepdim=True)) * ct + gray.mean(dim=(2, 3), keepdim=True)
    gray = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3])
    y = (y - gray) * sat + gray
    y = hue_rotate(y, turns)
    return torch.where(apply, y, x).clamp(0.0, 1.0)


class StylePool:
    """Augmented crops of paintings (and optionally photos) for arbitrary-style training.

    Args:
        style_dir: folder of paintings (recursive) or a list of image paths.
        size: side of the served crops.
        scale: crop side relative to ``size`` before downscaling (strokes at several sizes).
        hold_out: style names (file stems as in :func:`painterly.styles.style_name`) never served.
        photos: a dataset whose crops serve as extra styles with probability ``photo_prob``.
        jitter: probability of colour jitter per served image.
    """

    def __init__(self, style_dir: str | os.PathLike | Sequence[str | os.PathLike], size: int = 256,
                 scale: tuple[float, float] = (1.0, 3.0), hold_out: Sequence[str] = (),
                 photos: ContentDataset | None = None, photo_prob: float = 0.2, jitter: float = 0.8,
                 device: str | torch.device = "cpu", channels_last: bool = False, seed: int = 0) -> None:
        paths = find_images(style_dir) if isinstance(style_dir, (str, os.PathLike)) else [Path(p) for p in style_dir]
        wanted = {style_name(n) for n in hold_out}
        self.held_out_paths = [p for p in paths if style_name(p) in wanted]
        train_paths = [p for p in paths if style_name(p) not in wanted]
        missing = wanted - {style_name(p) for p in self.held_out_paths}
        if missing:
            warnings.warn(f"held-out style(s) not found in {style_dir}: {', '.join(sorted(missing))}", stacklevel=2)
        if not train_paths:
            raise PainterlyError(f"no training style images in {style_dir} (after holding out {sorted(wanted)})")
        self.paintings = ContentDataset(train_paths, size=size, scale=scale, device=device, seed=seed)
        self.size = size
        self.photos = photos if photo_prob > 0 else None
        self.photo_prob = photo_prob
        self.jitter = jitter
        self.channels_last = channels_last
        self.device = torch.device(device)

    @property
    def names(self) -> list[str]:
        """Names of the paintings that are trained on."""
        return [style_name(p) for p in self.paintings.paths]

    @property
    def held_out(self) -> list[str]:
        return [style_name(p) for p in self.held_out_paths]

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` augmented style crops (n, 3, size, size) in [0, 1]."""
        crops = []
        use_photo = torch.rand(n, generator=generator) < (self.photo_prob if self.photos is not None else 0.0)
        for k in range(n):
            source = self.photos if bool(use_photo[k]) and self.photos is not None else self.paintings
            index = int(torch.randint(0, len(source), (), generator=generator))
            crop = source.crop(index, generator)
            if crop.shape[-1] != self.size:  # photos prepared for another crop size
                crop = F.interpolate(crop[None], size=(self.size, self.size), mode="bilinear", antialias=True)[0]
            crops.append(crop)
        batch = torch.stack(crops)
        if self.jitter > 0:
            batch = color_jitter(batch, generator, prob=self.jitter)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch


def load_style_images(paths: Sequence[str | os.PathLike], size: int,
                      device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """Whole paintings as (1, 3, h, w) tensors with longest side ``size`` (for evaluation)."""
    return [to_tensor(load_image(p, size=size, min_side=MIN_SIDE), device) for p in paths]
