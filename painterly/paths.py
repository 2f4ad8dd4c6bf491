"""Where painterly's files live: the shipped models and the per-user cache (no torch)."""

from __future__ import annotations

import os
from pathlib import Path

#: The folder of the shipped models (``painterly/pretrained/``).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def pretrained_path(filename: str) -> Path:
    """Location of a weights file shipped inside the package (``painterly/pretrained/``)."""
    return PRETRAINED_DIR / filename


def cache_dir() -> Path:
    """The per-user cache folder: ``$PAINTERLY_CACHE``, else ``$XDG_CACHE_HOME/painterly``, else
    ``~/.cache/painterly``."""
    if os.environ.get("PAINTERLY_CACHE"):
        return Path(os.environ["PAINTERLY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "painterly"
