"""Edge-aware upsampling of a low-resolution stylization, guided by the full-resolution photo (numpy and
Pillow, no torch).

The stylized image ``p`` (h x w) is upsampled with bicubic filtering, and the photo's high frequencies that
the network never saw, ``I - up(I_low)`` (the full-resolution photo minus the upsampled copy the network
was given), are added back through a local linear model of the stylization: in each small window of the
low-resolution images ``p ~ A I_low + b`` (the colour guided filter of He et al., least squares with
ridge ``eps``), and

    out = up(p + sum_j (1 - K)^j t) + up(A) (I - up(I_low)),    t = p - A I_low

with ``A`` box-averaged and upsampled bilinearly (the fast guided filter's coefficient upsampling). Where
the photo has an edge, the result gets it at full sharpness with the stylization's local contrast; in flat
regions (photo variance well under ``eps``) ``A`` vanishes and the result is ``p`` bicubically upsampled,
so photo noise is not painted in. ``t`` is the stylization's own texture (the strokes the photo does not
explain); ``K`` is the blur of a bicubic-up, Lanczos-down round trip, and the series (j = 1..3, the
Neumann series of ``K^-1 - 1``) pre-sharpens the strokes against it, as back-projection would: downscaled
again, the result is ``p``, its strokes included, and the look is kept.

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
#: Terms of the series that undoes the round-trip blur on the strokes (see the module docstring).
DEFAULT_SHARPEN_STEPS = 3
#: Output pixels per strip (about 90 MB of working arrays).
DEFAULT_STRIP_PIXELS = 1 << 20


def _resize_rows(plane: np.ndarray, first: int, rows: tuple[int, int], scale: float, width: int,
                 resample: Image.Resampling) -> np.ndarray:
    """Output rows ``rows`` (of an image ``width`` wide, ``scale`` source rows per output row) of the resize
    of ``plane`` (float32 (n, w)), which holds source rows ``first`` onwards: Pillow's filters on the exact
    output grid of the whole image, so strips agree with one whole resize."""
    r0, r1 = rows
    box = (0.0, r0 * scale - first, float(plane.shape[1]), r1 * scale - first)
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, r1 - r0), resample, box=box))


def _box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean of (n, m, ...) over (2r+1)^2 windows clipped to the array (a window's count of valid pixels)."""
    def along(a: np.ndarray, axis: int) -> np.ndarray:
        a = np.moveaxis(a, axis, 0)
        n = a.shape[0]
        c = np.cumsum(a, axis=0)
        # window sums c[i + r] - c[i - r - 1], indices clipped to the array: pad the running sum with r zeros
        # before (and a zero for "nothing yet") and r copies of the total after
        c = np.concatenate([np.zeros((r + 1, *a.shape[1:]), a.dtype), c, np.repeat(c[-1:], r, axis=0)])
        i = np.arange(n)
        count = (np.minimum(i + r, n - 1) - np.maximum(i - r, 0) + 1).astype(a.dtype)
        sums = c[2 * r + 1:2 * r + 1 + n] - c[:n]
        return np.moveaxis(sums / count.reshape(-1, *[1] * (a.ndim - 1)), 0, axis)

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


def roundtrip_kernel(n_low: int, n_high: int, tol: float = 1e-3) -> np.ndarray:
    """The 1-D blur (odd length, sums to one) of upsampling ``n_low`` samples to ``n_high`` with Pillow's
    bicubic filter and downscaling back with Lanczos: its response to an impulse, taps under ``tol`` cut."""
    n = 33
    x = np.zeros((1, n), np.float32)
    x[0, n // 2] = 1.0
    up = Image.fromarray(x, mode="F").resize((max(n, round(n * n_high / n_low)), 1), Image.Resampling.BICUBIC)
    k = np.asarray(up.resize((n, 1), Image.Resampling.LANCZOS), dtype=np.float64)[0]
    r = max([0, *(abs(i - n // 2) for i in np.flatnonzero(np.abs(k) >= tol))])
    k = k[n // 2 - r:n // 2 + r + 1]
    return (k / k.sum()).astype(np.float32)


def _convolve(x: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """``x`` convolved with the symmetric kernel ``k`` along ``axis``, edges replicated."""
    r = len(k) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = np.pad(x, pad, mode="edge")
    n = x.shape[axis]
    return sum(k[i] * np.take(xp, np.arange(i, i + n), axis=axis) for i in range(len(k)))


def _as_rgb(img: Image.Image | np.ndarray) -> np.ndarray:
    return np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img, dtype=np.uint8)


def guided_upsample(low: Image.Image | np.ndarray, guide: Image.Image | np.ndarray,
                    guide_low: Image.Image | np.ndarray | None = None, *, radius: int = DEFAULT_RADIUS,
                    eps: float = DEFAULT_EPS, sharpen_steps: int = DEFAULT_SHARPEN_STEPS,
                    strip_pixels: int = DEFAULT_STRIP_PIXELS) -> Image.Image:
    """``low`` (the stylized image) brought to the size of ``guide`` (the full-resolution photo), with the
    photo's edges and detail restored (see the module docstring).

    ``guide_low``: the photo at ``low``'s size as the network saw it (default: ``guide`` downscaled with
    Lanczos). ``sharpen_steps``: terms of the series that pre-sharpens the strokes (0: none).
    ``strip_pixels``: output pixels computed at once (bounds the memory).
    """
    if not isinstance(guide, Image.Image):
        guide = Image.fromarray(_as_rgb(guide))
    guide = guide.convert("RGB")
    p = _as_rgb(low)
    (h, w), (ww, hh) = p.shape[:2], guide.size
    if guide_low is None:
        guide_low = guide.resize((w, h), Image.Resampling.LANCZOS)
    gl = _as_rgb(guide_low)
    if gl.shape != p.shape:
        raise ValueError(f"guide_low is {gl.shape[1]}x{gl.shape[0]}, the stylized image {w}x{h}")
    scale = h / hh
    ky, kx = roundtrip_kernel(h, hh), roundtrip_kernel(w, ww)
    cubic, linear = Image.Resampling.BICUBIC, Image.Resampling.BILINEAR
    out = Image.new("RGB", (ww, hh))
    step = max(1, strip_pixels // ww)
    for r0 in range(0, hh, step):
        rows = (r0, min(hh, r0 + step))
        # low rows the resizes reach (bicubic: 2 on each side); around them the sharpening's reach, and the
        # box filters' halo, twice
        lo, hi = max(0, int(r0 * scale) - 3), min(h, int(np.ceil(rows[1] * scale)) + 3)
        reach = sharpen_steps * (len(ky) // 2) + 2 * radius
        b0, b1 = max(0, lo - reach), min(h, hi + reach)
        gb, pb = gl[b0:b1] / np.float32(255.0), p[b0:b1] / np.float32(255.0)
        a = coefficients(gb, pb, radius, eps)
        texture = pb - np.einsum("nmij,nmj->nmi", a, gb)  # what the photo's local linear model does not explain
        sharp = pb
        for _ in range(sharpen_steps):  # p + sum_j (1 - K)^j t (see the module docstring)
            texture = texture - _convolve(_convolve(texture, ky, 0), kx, 1)
            sharp = sharp + texture
        sharp = sharp[lo - b0:hi - b0]
        a, gb = a[lo - b0:hi - b0], gb[lo - b0:hi - b0]
        g = np.asarray(guide.crop((0, r0, ww, rows[1])))
        strip = np.empty((rows[1] - r0, ww, 3), dtype=np.uint8)
        detail = [g[..., j] / np.float32(255.0) - _resize_rows(gb[..., j], lo, rows, scale, ww, cubic)
                  for j in range(3)]
        for i in range(3):
            res = _resize_rows(sharp[..., i], lo, rows, scale, ww, cubic).copy()
            for j in range(3):
                res += _resize_rows(a[..., i, j], lo, rows, scale, ww, linear) * detail[j]
            strip[..., i] = np.clip(np.rint(res * 255.0), 0, 255)
        out.paste(Image.fromarray(strip), (0, r0))
    return out
