"""Argument checks shared by several subcommands (not a subcommand itself)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import PainterlyError
from ..imageio import SAVE_FORMATS
from ..models.tensorfile import pretrained_path


def check_output(path: str) -> Path:
    """The output path, refused early when its extension cannot be written."""
    out = Path(path)
    if out.suffix.lower() not in SAVE_FORMATS:
        raise PainterlyError(f"cannot write '{out}': unsupported extension (use {', '.join(sorted(SAVE_FORMATS))})")
    return out


def check_style_mix(mix: Sequence[float] | None, styles: Sequence[str]) -> None:
    """``--style-mix`` must give one weight per ``--style``."""
    if mix is not None and len(mix) != len(styles):
        raise PainterlyError(f"--style-mix has {len(mix)} weights for {len(styles)} styles")


def shipped_or_path(spec: str | None, shipped_file: str) -> str | None:
    """A model option: ``"shipped"`` -> the packaged file ``shipped_file``; anything else unchanged."""
    return str(pretrained_path(shipped_file)) if spec == "shipped" else spec
