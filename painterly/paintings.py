"""The public-domain paintings bundled with painterly, usable by name (``--style starry-night``).

Credits and sources are in ``painterly/assets/CREDITS.md``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import StyleNotFoundError

_PD = "public domain"


@dataclass(frozen=True)
class Painting:
    """A bundled painting: ``name`` is its command-line name and file stem."""

    name: str
    title: str
    artist: str
    year: str
    license: str = _PD

    @property
    def path(self) -> Path:
        return bundled_painting(self.name)

    def __str__(self) -> str:
        return f"{self.name}: {self.title} ({self.year}), {self.artist}"


_CATALOGUE: tuple[Painting, ...] = (
    Painting("composition-vii", "Composition VII", "Wassily Kandinsky", "1913"),
    Painting("great-wave", "The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1831"),
    Painting("mona-lisa", "Mona Lisa", "Leonardo da Vinci", "c. 1503-1519"),
    Painting("mondrian-composition-1913", "Grid composition (Cubist period)", "Piet Mondrian", "c. 1913-1914"),
    Painting("poppy-field", "Poppy Field (Coquelicots)", "Claude Monet", "1873"),
    Painting("shipwreck-of-the-minotaur", "The Shipwreck of the Minotaur", "J. M. W. Turner", "c. 1810"),
    Painting("starry-night", "The Starry Night", "Vincent van Gogh", "1889"),
    Painting("the-scream", "The Scream", "Edvard Munch", "1893"),
    Painting("udnie", "Udnie, Young American Girl (The Dance)", "Francis Picabia", "1913"),
    Painting("woman-with-a-hat", "Woman with a Hat", "Henri Matisse", "1905"),
)


def list_paintings() -> list[Painting]:
    """Every bundled painting, sorted by name."""
    return sorted(_CATALOGUE, key=lambda p: p.name)


def painting_names() -> list[str]:
    return [p.name for p in list_paintings()]


def get_painting(name: str) -> Painting:
    """The catalogue entry for ``name`` (case-insensitive; ``_`` and spaces count as ``-``)."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    for p in _CATALOGUE:
        if p.name == key:
            return p
    names = painting_names()
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise StyleNotFoundError(f"unknown painting '{name}': {hint}bundled paintings are {', '.join(names)}")


def bundled_painting(name: str) -> Path:
    """Path of the bundled painting ``name``, e.g. ``bundled_painting("starry-night")``."""
    p = get_painting(name)
    res = resources.files("painterly").joinpath("assets", "styles", f"{p.name}.jpg")
    path = Path(str(res))
    if not path.is_file():  # a broken install (e.g. package data not shipped)
        raise StyleNotFoundError(f"bundled painting '{p.name}' is missing from the installation ({path})")
    return path
