"""Style metadata: the name/title/artist record stored in models, and where it comes from."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


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
