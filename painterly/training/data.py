"""Training photos: :class:`ContentDataset` (decoded once, random crops, sharded per rank).

``ContentDataset(source, size=256, scale=(1.0, 2.0), device="cpu")``: every image under a
folder (recursive) or a list of paths, decoded once and kept in memory as uint8 tensors on
``device`` (downscaled so the short side is ``size * scale[1]``), so a GPU is never starved.
Unreadable files are skipped (``.skipped`` lists ``(path, reason)``; one warning with the
count), never a crash. ``dataset.sample(batch_size, generator, step, dist)`` returns a float
batch ``(B, 3, size, size)`` in [0, 1]: random square crops whose side is ``size * U(scale)``
(clipped to the image), resized to ``size``, randomly flipped. Which images a step sees
follows a per-epoch permutation sharded over the ranks like ``DistributedSampler`` (disjoint
per rank, every image once per epoch); crops/flips come from ``generator``. Everything is a
pure function of ``(seed, step, rank)``, which makes ``--resume`` exact without saving data
RNG state. ``dataset.fixed_batch(n)`` gives a deterministic validation batch (centre crops).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ImageError, PainterlyError
from ..imageio import find_images, read_image
from .distributed import DistInfo, step_seed


def _image_paths(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return [path]
        if not path.exists():
            raise ImageError(f"data folder '{source}' does not exist")
        return find_images(path)
    paths: list[Path] = []
    for item in source:
        paths.extend(_image_paths(item))
    return paths


class ContentDataset:
    """Photos preloaded into memory; random square crops at random scale, random flips.

    Args:
        source: a folder (searched recursively), an image file, or a list of either.
        size: side of the returned crops.
        scale: range of the crop side relative to ``size`` before resizing to ``size``
            (1.0: a native-resolution crop; 2.0: a crop twice as large, downscaled).
        device: where the decoded images (uint8) and batches live.
        channels_last: return batches in channels_last memory format.
        max_images: keep at most this many readable images (in sorted order).
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str | os.PathLike],
        size: int = 256,
        scale: tuple[float, float] = (1.0, 2.0),
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        seed: int = 0,
        max_images: int | None = None,
    ) -> None:
        if size < 8:
            raise PainterlyError(f"training image size must be at least 8 pixels, got {size}")
        lo, hi = scale
        if not 0 < lo <= hi:
            raise PainterlyError(f"bad crop scale range {scale}")
        self.size, self.scale, self.seed = size, (float(lo), float(hi)), seed
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.skipped: list[tuple[Path, str]] = []
        self.paths: list[Path] = []
        self.images: list[torch.Tensor] = []
        short_target = max(size, math.ceil(size * hi))
        for path in _image_paths(source):
            if max_images is not None and len(self.images) >= max_images:
                break
            try:
                img = read_image(path).rgb
                img = _resize_short(img, short_target)
            except (ImageError, OSError, ValueError) as exc:  # never crash on one bad file
                self.skipped.append((path, str(exc)))
                continue
            arr = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
            self.images.append(arr.to(self.device))
            self.paths.append(path)
        if self.skipped:
            first = self.skipped[0]
            warnings.warn(f"skipped {len(self.skipped)} unreadable image(s), e.g. {first[1]}", stacklevel=2)
        if not self.images:
            raise PainterlyError(f"no readable training images in {source}")
        self._perms: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.images)

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            gen = torch.Generator().manual_seed(step_seed(self.seed, epoch, -1))
            self._perms[epoch] = torch.randperm(len(self.images), generator=gen)
        return self._perms[epoch]

    def indices(self, batch_size: int, step: int, dist: DistInfo = DistInfo()) -> list[int]:
        """Image indices for ``step`` on ``dist.rank`` (per-epoch permutation, sharded)."""
        n = len(self.images)
        first = (step * dist.world_size + dist.rank) * batch_size
        return [int(self._perm(g // n)[g % n]) for g in range(first, first + batch_size)]

    def crop(self, index: int, generator: torch.Generator) -> torch.Tensor:
        """One random crop of image ``index`` as a float tensor (3, size, size) in [0, 1]."""
        img = self.images[index]
        h, w = img.shape[-2:]
        lo, hi = self.scale
        u = float(torch.rand((), generator=generator))
        side = min(h, w, max(1, round(self.size * (lo + (hi - lo) * u))))
        top = int(torch.randint(0, h - side + 1, (), generator=generator))
        left = int(torch.randint(0, w - side + 1, (), generator=generator))
        flip = bool(torch.rand((), generator=generator) < 0.5)
        patch = img[:, top : top + side, left : left + side].unsqueeze(0).float().div_(255.0)
        if side != self.size:
            patch = F.interpolate(patch, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=side > self.size)
        if flip:
            patch = patch.flip(-1)
        return patch[0].clamp_(0.0, 1.0)

    def sample(self, batch_size: int, generator: torch.Generator, step: int = 0,
               dist: DistInfo = DistInfo()) -> torch.Tensor:
        """A random batch (B, 3, size, size) in [0, 1] for ``step`` on this rank."""
        batch = torch.stack([self.crop(i, generator) for i in self.indices(batch_size, step, dist)])
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def fixed_batch(self, n: int = 4, size: int | None = None) -> torch.Tensor:
        """Deterministic validation batch: centre crops of ``n`` evenly spread images."""
        size = size or self.size
        picks = np.linspace(0, len(self.images) - 1, num=min(n, len(self.images))).round().astype(int)
        out = []
        for i in picks:
            img = self.images[int(i)]
            h, w = img.shape[-2:]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            patch = img[:, top : top + side, left : left + side].unsqueeze(0).float() / 255.0
            out.append(F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False,
                                     antialias=side > size)[0].clamp(0, 1))
        return torch.stack(out)


def _resize_short(img: Image.Image, short: int) -> Image.Image:
    w, h = img.size
    scale = short / min(w, h)
    if scale >= 1.0 and min(w, h) >= short:
        return img
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
