"""Style metadata: the name/title/artist record stored in models, and where it comes from."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: A style choice: a name, ``{name: weight}`` (mixed, weights normalised) or a list of names (equal weights).
StyleSpec = str | Mapping[str, float] | Sequence[str]


@dataclass(frozen=True)
class StyleInfo:
    """One style of a model: ``name`` (used on the command line), ``title`` and ``artist``."""

    name: str
    title: str = ""
    artist: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StyleInfo:
        return cls(**{k: str(d.get(k, "")) for k in ("name", "title", "artist", "source")})

    def __str__(self) -> str:
        return self.name


def style_weights(names: Sequence[str], style: StyleSpec, where: str = "") -> np.ndarray:
    """A style spec -> normalised float32 weight vector over ``names`` (a model's styles, in order).

    Unknown names raise :class:`~painterly.errors.StyleNotFoundError` listing the available ones
    (``where``: the model file, for the message); negative, infinite or all-zero weights a
    :class:`~painterly.errors.ModelError`.
    """
    from .errors import ModelError, StyleNotFoundError

    if isinstance(style, str):
        style = {style: 1.0}
    elif not isinstance(style, Mapping):
        style = {name: 1.0 for name in style}
    if not style:
        raise StyleNotFoundError(f"no style given; available: {', '.join(names)}")
    vec = np.zeros(len(names), dtype=np.float64)
    for name, w in style.items():
        w = float(w)
        if not (w >= 0.0) or w == float("inf"):
            raise ModelError(f"style weight for '{name}' must be a finite number >= 0, got {w}")
        if name not in names:
            at = f" in '{where}'" if where else ""
            raise StyleNotFoundError(f"unknown style '{name}'{at}; available: {', '.join(names)}")
        vec[list(names).index(name)] += w
    total = float(vec.sum())
    if total <= 0:
        raise ModelError("style weights must not all be zero")
    return (vec / total).astype(np.float32)


def style_name(path: str | os.PathLike) -> str:
    """A command-line friendly name from a file name: ``The Scream.jpg`` -> ``the-scream``."""
    stem = Path(path).stem.lower()
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "style"


def _manifest_rows(folder: Path) -> dict[str, dict[str, str]]:
    """Rows of a ``MANIFEST.tsv`` (columns ``path`` and ``title_artist`` or ``title``/``artist``)."""
    path = folder / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {Path(r["path"]).name: r for r in csv.DictReader(fh, delimiter="\t") if r.get("path")}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError):
        return {}


def style_info_for(path: str | os.PathLike, name: str | None = None) -> StyleInfo:
    """Metadata for a style image: from a ``MANIFEST.tsv`` next to it or one folder up, else from
    the bundled paintings' catalogue (matched by name), else derived from the file name.

    ``title_artist`` values look like ``"The Scream (1893) - Edvard Munch"``.
    """
    path = Path(path)
    name = name or style_name(path)
    for folder in (path.parent, path.parent.parent):
        row = _manifest_rows(folder).get(path.name)
        if row is None:
            continue
        title, artist = row.get("title", ""), row.get("artist", "")
        if not title and row.get("title_artist"):
            title, _, artist = row["title_artist"].rpartition(" - ")
            if not title:
                title, artist = artist, ""
        return StyleInfo(name, title.strip(), artist.strip(), row.get("source", "").strip())
    from .paintings import list_paintings

    for painting in list_paintings():
        if painting.name == name:
            return StyleInfo(name, f"{painting.title} ({painting.year})", painting.artist, "bundled with painterly")
    return StyleInfo(name, name.replace("-", " ").title(), "")


def resolve_style_image(spec: str | os.PathLike) -> Path:
    """A style image path: an existing file, or the name of a bundled painting."""
    path = Path(spec)
    if path.is_file():
        return path
    from .errors import ImageError
    from .paintings import bundled_painting, painting_names

    if isinstance(spec, str) and not path.suffix and os.sep not in spec:
        return bundled_painting(spec)
    raise ImageError(f"style image '{spec}' not found (bundled paintings: {', '.join(painting_names())})")
