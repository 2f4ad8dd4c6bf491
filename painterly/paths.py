"""Where painterly keeps per-user files (no torch)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Per-user cache folder (``$PAINTERLY_CACHE``, else ``$XDG_CACHE_HOME/painterly``)."""
    env = os.environ.get("PAINTERLY_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "painterly"
