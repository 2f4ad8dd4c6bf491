"""Synthetic clips made from the bundled photos, for tests, benchmarks and the docs: a camera pan, a
subject moving over a still background, a hard scene cut; and writing frames as an H.264 mp4 with an
optional sine-wave audio track."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .io import _av

PHOTOS = Path(__file__).resolve().parent.parent / "assets" / "photos"


def photo(name: str, height: int) -> np.ndarray:
    """A bundled photo (``"lake.jpg"``) scaled to ``height`` pixels, as uint8 RGB."""
    img = Image.open(PHOTOS / name).convert("RGB")
    return np.asarray(img.resize((round(height * img.width / img.height), height), Image.Resampling.LANCZOS))


def pan(name: str, n: int, width: int, height: int, zoom: float = 1.15) -> list[np.ndarray]:
    """A camera pan: a ``width`` x ``height`` window sliding diagonally across the photo over ``n`` frames."""
    with Image.open(PHOTOS / name) as im:
        ratio = im.width / im.height
    img = photo(name, max(round(height * zoom), math.ceil(width / ratio)))
    dx, dy = img.shape[1] - width, img.shape[0] - height
    out = []
    for i in range(n):
        t = i / max(1, n - 1)
        y, x = round(dy * t), round(dx * t)
        out.append(np.ascontiguousarray(img[y:y + height, x:x + width]))
    return out


def moving_subject(n: int, width: int, height: int, subject: str = "otters.jpg",
                   background: str = "colosseum.jpg") -> list[np.ndarray]:
    """A square patch of ``subject`` moving across a still ``background`` (occlusions and disocclusions)."""
    img = Image.open(PHOTOS / background)
    cover = max(height, math.ceil(width * img.height / img.width))  # tall enough to be at least ``width`` wide
    back = np.ascontiguousarray(photo(background, cover)[:height, :width])
    side = height // 2
    patch = photo(subject, side)[:, :side]
    frames = []
    for i in range(n):
        t = i / max(1, n - 1)
        x = round((back.shape[1] - side) * t)
        y = round((height - side) * (0.5 + 0.4 * np.sin(2 * np.pi * t)))
        f = back.copy()
        f[y:y + side, x:x + side] = patch
        frames.append(f)
    return frames


def scene_cut(n: int, width: int, height: int, first: str = "lake.jpg", second: str = "colosseum.jpg"
              ) -> list[np.ndarray]:
    """A pan over ``first``, then a hard cut (at frame ``n // 2``) to a pan over ``second``."""
    return pan(first, n // 2, width, height) + pan(second, n - n // 2, width, height)


def write_clip(path: str | os.PathLike, frames: list[np.ndarray], fps: int = 24, audio_hz: float | None = None,
               rotation: int = 0, crf: int = 14) -> Path:
    """Write ``frames`` as an H.264 mp4 at ``fps`` (with a mono sine of ``audio_hz`` Hz, AAC, when given;
    with a display rotation when ``rotation``)."""
    av = _av()
    rate = 22050
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": str(crf)}
        if rotation:
            s.set_display_rotation(rotation)
        a = None
        if audio_hz:
            a = c.add_stream("aac", rate=rate)
            a.layout = "mono"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        if a is not None:
            for t in range(0, round(rate * len(frames) / fps), 1024):
                x = (0.3 * np.sin(2 * np.pi * audio_hz * np.arange(t, t + 1024) / rate)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
                af.sample_rate, af.pts = rate, t
                c.mux(a.encode(af))
            c.mux(a.encode(None))
        c.mux(s.encode(None))
    return Path(path)
