"""Tiled inference of large images, in numpy (shared by every engine).

The instance-norm statistics are first collected on the whole image (or, when it is larger than
``stats_size``, on a downscaled copy) and then frozen for every tile, so all tiles are normalised
alike; tiles overlap, the outputs near a tile's inner edge (inside the network's receptive field)
get zero weight and the rest is blended with raised-cosine ramps, normalised to sum to one. The
tiled result matches the untiled one away from the image border up to rounding, and no seams show.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

#: Images with more pixels than ``tile_size ** 2`` are processed in tiles.
DEFAULT_TILE = 1024
#: Minimum tile overlap: per inner tile edge a dead zone of a third (more than the full network's
#: receptive-field radius of about 58 px) and a cosine ramp of a third.
DEFAULT_OVERLAP = 192
#: Longest side of the copy the instance-norm statistics are computed on for tiled images.
DEFAULT_STATS_SIZE = 1024
#: Smallest side of that copy (a thin image's proxy would otherwise be a few pixels high).
MIN_PROXY_SIDE = 16

#: ``forward(x, stats)`` -> ``(y, stats_out)``: one network pass on a (1, 3, h, w) array; ``stats`` None
#: computes the instance-norm statistics from ``x``, otherwise they are used as given.
Forward = Callable[[np.ndarray, "np.ndarray | None"], "tuple[np.ndarray, np.ndarray]"]


def axis_tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Tile (start, end) along one axis; starts are multiples of 4 and ends cover ``length``."""
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    starts = [min(length - tile, 4 * round(i * (length - tile) / (n - 1) / 4)) for i in range(n)]
    return [(s, s + tile) for s in starts]


def _edge_ramp(dist: np.ndarray, dead: int, ramp: int) -> np.ndarray:
    """Weight by distance from a tile's inner edge: 0 within ``dead`` pixels (inside the network's
    receptive field, where the tile border shows), then a raised cosine rising to 1 over ``ramp``."""
    t = np.clip((dist - dead + 0.5) / max(1, ramp), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def axis_weights(tiles: list[tuple[int, int]], overlap: int = DEFAULT_OVERLAP) -> list[np.ndarray]:
    """Per-tile 1-D float32 blend weights, normalised so they sum to one at every position.

    Any two adjacent tiles overlap by at least ``overlap``; a third of it is each tile's dead
    zone and a third its ramp, so every pixel has a tile whose output there is exact.
    """
    length = tiles[-1][1]
    dead = ramp = overlap // 3
    pos = np.arange(length, dtype=np.float64)
    raw = []
    for s, e in tiles:
        w = np.zeros(length)
        p = pos[s:e]
        w[s:e] = 1.0
        if s > 0:
            w[s:e] *= _edge_ramp(p - s, dead, ramp)
        if e < length:
            w[s:e] *= _edge_ramp(e - 1 - p, dead, ramp)
        raw.append(w)
    total = np.sum(raw, axis=0)
    return [(w / total)[s:e].astype(np.float32) for w, (s, e) in zip(raw, tiles, strict=True)]


def tile_geometry(tile_size: int, overlap: int) -> tuple[int, int]:
    """``(tile_size, overlap)`` rounded up to multiples of 4, the tile at least three overlaps' thirds wide."""
    return max(4 * math.ceil(tile_size / 4), 3 * 4 * math.ceil(overlap / 12) + 4), 4 * math.ceil(overlap / 4)


def proxy_size(h: int, w: int, stats_size: int) -> tuple[int, int] | None:
    """(H, W) of the statistics copy of an ``h`` x ``w`` image: multiples of 4, longest side ``stats_size``
    (a thin image's short side at least :data:`MIN_PROXY_SIDE`); None when the image itself is small enough."""
    if max(h, w) <= stats_size:
        return None
    scale = stats_size / max(h, w)
    return max(MIN_PROXY_SIDE, 4 * round(h * scale / 4)), max(MIN_PROXY_SIDE, 4 * round(w * scale / 4))


def pad_to_multiple(x: np.ndarray, multiple: int = 4) -> np.ndarray:
    """Reflection-pad the bottom/right of (..., H, W) so H and W are multiples of ``multiple``
    (edge replication when the image is too small to reflect)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode=mode)


def resize_array(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(1, C, H, W) float32 -> (1, C, *size) with antialiased bilinear filtering (Pillow, per channel)."""
    hh, ww = size
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(c, dtype=np.float32), mode="F")
                         .resize((ww, hh), Image.Resampling.BILINEAR)) for c in x[0]]
    return np.stack(planes)[None].astype(np.float32)


def run_tiled(forward: Forward, x: np.ndarray, tile_size: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
              stats_size: int = DEFAULT_STATS_SIZE) -> np.ndarray:
    """Stylize ``x`` (1, 3, H, W) float32 in [0, 1] with ``forward``; returns (1, 3, H, W) float32 in [0, 1].

    Images over ``tile_size ** 2`` pixels run in overlapping tiles (see the module docstring).
    """
    h, w = x.shape[-2:]
    xp = pad_to_multiple(np.ascontiguousarray(x, dtype=np.float32), 4)
    if h * w <= tile_size * tile_size:
        return np.clip(forward(xp, None)[0][..., :h, :w], 0.0, 1.0)
    tile_size, overlap = tile_geometry(tile_size, overlap)
    size = proxy_size(h, w, stats_size)
    proxy = xp if size is None else pad_to_multiple(resize_array(x, size), 4)
    _, stats = forward(proxy, None)
    hp, wp = xp.shape[-2:]
    rows, cols = axis_tiles(hp, tile_size, overlap), axis_tiles(wp, tile_size, overlap)
    wr, wc = axis_weights(rows, overlap), axis_weights(cols, overlap)
    out = np.zeros((1, 3, hp, wp), dtype=np.float32)
    for (r0, r1), wy in zip(rows, wr, strict=True):
        for (c0, c1), wx in zip(cols, wc, strict=True):
            y, _ = forward(np.ascontiguousarray(xp[..., r0:r1, c0:c1]), stats)
            out[..., r0:r1, c0:c1] += y * (wy[:, None] * wx[None, :])
    return np.clip(out[..., :h, :w], 0.0, 1.0)
