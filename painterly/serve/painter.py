"""The work the server does in its inference slots: decode, paint, encode (tests swap in a fake)."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import Image

from ..errors import StyleNotFoundError
from ..imageio import resize_longest
from ..paintings import bundled_painting, painting_names
from .uploads import decode_upload, encode

#: Side of gallery thumbnails.
THUMB_SIDE = 192


def sample_photos() -> dict[str, Path]:
    """The bundled photos by name (``lake`` ...), offered by the page as a starting point."""
    folder = Path(str(resources.files("painterly").joinpath("assets", "photos")))
    return {p.stem: p for p in sorted(folder.glob("*.jpg"))}


@dataclass
class StylizeJob:
    photo: bytes
    style: str | dict[str, float]
    size: int
    strength: float
    preserve_color: str | None
    fmt: str


@dataclass
class TransferJob:
    photo: bytes
    painting: bytes | str  # an upload, or a bundled painting's name
    alpha: float
    size: int
    preserve_color: str | None
    fmt: str


def _shrink_to(size: int, photo: Image.Image) -> int | None:
    """``size`` when the photo is larger, else None (its own size: results are never upscaled)."""
    return size if max(photo.size) > size else None


class Painter:
    """Runs jobs with painterly's public API; ``max_pixels`` bounds every decoded upload."""

    def __init__(self, max_pixels: int, engine: str | None = None) -> None:
        self.max_pixels = max_pixels
        self.engine = engine

    def _engine_kwargs(self) -> dict:
        return {"engine": self.engine} if self.engine else {}

    def style_names(self) -> list:
        import painterly

        return painterly.list_styles()

    def stylize(self, job: StylizeJob) -> bytes:
        import painterly

        photo = decode_upload(job.photo, "photo", self.max_pixels)
        out = painterly.stylize(photo, job.style, size=_shrink_to(job.size, photo), strength=job.strength,
                                preserve_color=job.preserve_color, **self._engine_kwargs())
        return encode(out, job.fmt)

    def transfer(self, job: TransferJob) -> bytes:
        import painterly

        photo = decode_upload(job.photo, "photo", self.max_pixels)
        painting = job.painting if isinstance(job.painting, str) else decode_upload(
            job.painting, "painting", self.max_pixels).convert("RGB")
        out = painterly.transfer(photo, painting, alpha=job.alpha, size=_shrink_to(job.size, photo),
                                 preserve_color=job.preserve_color)
        return encode(out, job.fmt)

    def warmup(self) -> None:
        """Load the models with one tiny run each."""
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (120, 160, 200)).save(buf, format="PNG")
        names = [s.name for s in self.style_names()]
        self.stylize(StylizeJob(buf.getvalue(), names[0], 64, 1.0, None, "jpeg"))
        self.transfer(TransferJob(buf.getvalue(), painting_names()[0], 1.0, 64, None, "jpeg"))

    @functools.lru_cache(maxsize=64)  # noqa: B019 (one Painter per app, kept for its lifetime)
    def style_thumbnail(self, name: str) -> bytes:
        """A gallery thumbnail: the bundled painting of that name, else the lake photo in that style."""
        if name not in {s.name for s in self.style_names()}:
            raise StyleNotFoundError(f"unknown style '{name}'")
        if name in painting_names():
            return painting_thumbnail(name)
        import painterly

        photo = resize_longest(Image.open(sample_photos()["lake"]).convert("RGB"), THUMB_SIDE)
        return encode(painterly.stylize(photo, name, **self._engine_kwargs()), "jpeg", quality=85)


@functools.lru_cache(maxsize=64)
def painting_thumbnail(name: str) -> bytes:
    """A bundled painting, longest side :data:`THUMB_SIDE`, as JPEG (cached in memory)."""
    with Image.open(bundled_painting(name)) as img:
        img.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))  # JPEG: decode at a reduced scale
        return encode(resize_longest(img.convert("RGB"), THUMB_SIDE), "jpeg", quality=85)


@functools.lru_cache(maxsize=8)
def sample_photo(name: str, side: int = 1024) -> bytes:
    """A bundled photo as JPEG, at most ``side`` px (cached in memory)."""
    path = sample_photos().get(name)
    if path is None:
        raise StyleNotFoundError(f"unknown sample photo '{name}'; samples: {', '.join(sample_photos())}")
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        return encode(resize_longest(rgb, side) if max(rgb.size) > side else rgb, "jpeg")
