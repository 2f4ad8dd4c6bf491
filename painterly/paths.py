"""Where painterly's files live: the shipped models and the per-user cache (no torch)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The folder of the shipped models (``painterly/pretrained/``).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def pretrained_path(filename: str) -> Path:
    """Location of a weights file shipped inside the package (``painterly/pretrained/``)."""
    return PRETRAINED_DIR / filename


def shipped_files(choices: Mapping[str, Sequence[str]], quality: str, folder: Path = PRETRAINED_DIR) -> list[Path]:
    """The files that ``choices`` lists for ``quality`` (in order of preference), those present in ``folder``."""
    return [folder / n for n in choices[quality] if (folder / n).is_file()]


def cache_dir() -> Path:
    """The per-user cache folder: ``$PAINTERLY_CACHE``, else ``$XDG_CACHE_HOME/painterly``, else
    ``~/.cache/painterly``."""
    if os.environ.get("PAINTERLY_CACHE"):
        return Path(os.environ["PAINTERLY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "painterly"


def read_cache_json(name: str) -> dict:
    """The JSON object in the cache file ``name`` (empty when missing, unreadable or not an object)."""
    try:
        data = json.loads((cache_dir() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_cache_entry(name: str, key: str, entry: object) -> None:
    """Set ``key`` in the cache file ``name``, atomically (a concurrent reader sees the old or the new
    file, never half of one); a read-only home is ignored (the caller measures again next time)."""
    from .imageio import atomic_write_bytes

    data = read_cache_json(name)
    data[key] = entry
    try:
        atomic_write_bytes(cache_dir() / name, json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError:
        pass
