"""Edge-aware upsampling of a low-resolution stylization, guided by the full-resolution photo (numpy only).

The stylized image ``p`` (h x w) is upsampled with bicubic filtering, and the photo's high frequencies that
the network never saw, ``I - up(I_low)`` (the full-resolution photo minus the upsampled copy the network
was given), are added back through a local linear model of the stylization: in each small window of the
low-resolution images ``p ~ A I_low + b`` (the colour guided filter of He et al., least squares with
ridge ``eps``), and

    out = up(p) + up(A) (I - up(I_low))

with ``A`` box-averaged and upsampled bilinearly (the fast guided filter's coefficient upsampling). Where
the photo has an edge, the result gets it at full sharpness with the stylization's local contrast; in flat
regions (photo variance well under ``eps``) ``A`` vanishes and the result is ``p`` bicubically upsampled,
so photo noise is not painted in. Downscaled again, the result is ``p``: the look is kept.

Everything runs in strips of output rows (the coefficients of a strip are computed from the few
low-resolution rows it needs), so memory stays bounded for any size, and the strips agree exactly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Half-width of the guided filter's window, in low-resolution pixels.
DEFAULT_RADIUS = 2
#: Ridge of the local linear fit, in squared [0, 1] intensity: windows with a photo standard deviation well
#: under ``sqrt(eps)`` (about 8/255) get no photo detail.
DEFAULT_EPS = 1e-3
#: Output pixels per strip (about 64 MB of float32 working arrays).
DEFAULT_STRIP_PIXELS = 1 << 20


def _cubic(d: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (Catmull-Rom for ``a = -0.5``, as Pillow's BICUBIC)."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def taps(n_out: int, n_in: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (each ``(n_out, k)``) of a 1-D resize from ``n_in`` to ``n_out`` samples,
    pixel centres aligned; ``kind``: ``"cubic"`` (4 taps) or ``"linear"`` (2). Edges are replicated."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(src).astype(np.int64)
    offsets = np.arange(-1, 3) if kind == "cubic" else np.arange(0, 2)
    idx = base[:, None] + offsets[None, :]
    dist = src[:, None] - idx
    w = _cubic(dist) if kind == "cubic" else np.maximum(0.0, 1.0 - np.abs(dist))
    w = w / w.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, n_in - 1), w.astype(np.float32)


def _resample(arr: np.ndarray, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray],
              first: int) -> np.ndarray:
    """Separable resize of ``arr`` (n, w, C), whose row 0 is source row ``first``, to the given taps."""
    (ri, rw), (ci, cw) = rows, cols
    v = sum(rw[:, k, None, None] * arr[ri[:, k] - first] for k in range(ri.shape[1]))
    return sum(cw[None, :, k, None] * v[:, ci[:, k]] for k in range(ci.shape[1]))


def _box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean of (n, m, ...) over (2r+1)^2 windows clipped to the array (a window's count of valid pixels)."""
    def along(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        c = np.cumsum(a, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        i = np.arange(n)
        hi, lo = np.minimum(i + r + 1, n), np.maximum(i - r, 0)
        shape = [1] * a.ndim
        shape[axis] = n
        return (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / (hi - lo).reshape(shape)

    return along(along(x, 0), 1)


def coefficients(guide: np.ndarray, p: np.ndarray, radius: int = DEFAULT_RADIUS,
                 eps: float = DEFAULT_EPS) -> np.ndarray:
    """Box-averaged coefficients ``A`` (n, m, 3, 3) of the local fits ``p ~ A guide + b`` (float [0, 1] images
    (n, m, 3)): ``A[..., i, j]`` weighs guide channel ``j`` in output channel ``i``."""
    g, q = guide.astype(np.float64), p.astype(np.float64)
    mean_g, mean_p = _box_mean(g, radius), _box_mean(q, radius)
    cov_gg = _box_mean(g[..., :, None] * g[..., None, :], radius) - mean_g[..., :, None] * mean_g[..., None, :]
    cov_pg = _box_mean(q[..., :, None] * g[..., None, :], radius) - mean_p[..., :, None] * mean_g[..., None, :]
    a = cov_pg @ np.linalg.inv(cov_gg + eps * np.eye(3))
    return _box_mean(a, radius).astype(np.float32)


def _as_rgb(img: Image.Image | np.ndarray) -> np.ndarray:
    return np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img, dtype=np.uint8)


def guided_upsample(low: Image.Image | np.ndarray, guide: Image.Image | np.ndarray,
                    guide_low: Image.Image | np.ndarray | None = None, *, radius: int = DEFAULT_RADIUS,
                    eps: float = DEFAULT_EPS, strip_pixels: int = DEFAULT_STRIP_PIXELS) -> Image.Image:
    """``low`` (the stylized image) brought to the size of ``guide`` (the full-resolution photo), with the
    photo's edges and detail restored (see the module docstring).

    ``guide_low``: the photo at ``low``'s size as the network saw it (default: ``guide`` downscaled with
    Lanczos). ``strip_pixels``: output pixels computed at once (bounds the memory).
    """
    p, g = _as_rgb(low), _as_rgb(guide)
    (h, w), (hh, ww) = p.shape[:2], g.shape[:2]
    if guide_low is None:
        guide_low = Image.fromarray(g).resize((w, h), Image.Resampling.LANCZOS)
    gl = _as_rgb(guide_low)
    if gl.shape != p.shape:
        raise ValueError(f"guide_low is {gl.shape[1]}x{gl.shape[0]}, the stylized image {w}x{h}")
    cubic_r, linear_r = taps(hh, h, "cubic"), taps(hh, h, "linear")
    cubic_c, linear_c = taps(ww, w, "cubic"), taps(ww, w, "linear")
    out = np.empty((hh, ww, 3), dtype=np.uint8)
    step = max(1, strip_pixels // ww)
    for r0 in range(0, hh, step):
        r1 = min(hh, r0 + step)
        cr, lr = (cubic_r[0][r0:r1], cubic_r[1][r0:r1]), (linear_r[0][r0:r1], linear_r[1][r0:r1])
        lo = int(min(cr[0].min(), lr[0].min()))
        hi = int(max(cr[0].max(), lr[0].max())) + 1
        b0, b1 = max(0, lo - 2 * radius), min(h, hi + 2 * radius)  # the box filters' halo, twice
        a = coefficients(gl[b0:b1] / 255.0, p[b0:b1] / 255.0, radius, eps)[lo - b0:hi - b0]
        low_rgb = np.concatenate([p[lo:hi], gl[lo:hi]], axis=-1).astype(np.float32) / 255.0
        up = _resample(low_rgb, cr, cubic_c, lo)
        up_a = _resample(a.reshape(hi - lo, w, 9), lr, linear_c, lo).reshape(r1 - r0, ww, 3, 3)
        detail = g[r0:r1].astype(np.float32) / 255.0 - up[..., 3:]
        res = up[..., :3] + np.einsum("nwij,nwj->nwi", up_a, detail)
        out[r0:r1] = np.clip(np.rint(res * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(out)
