"""Argument checks and helpers shared by several subcommands (not a subcommand itself)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from ..engines import ENGINES, QUALITIES
from ..errors import PainterlyError
from ..imageio import SAVE_FORMATS
from ..paths import pretrained_path

C = TypeVar("C")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine`` and ``--quality`` (stylize, transfer)."""
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="onnxruntime (no torch needed), torch, or auto: the faster one on this machine (default)")
    p.add_argument("--quality", choices=QUALITIES, default="fast",
                   help="fast: the int8 model where shipped (default); high: full precision")


def add_stroke_scale_option(p: argparse.ArgumentParser) -> None:
    """``--stroke-scale`` (stylize, transfer, video); checked by :func:`painterly.stroke_scale.check_stroke_scale`."""
    p.add_argument("--stroke-scale", default="1", metavar="X",
                   help="stroke size relative to the image: the network paints a 1024/X px copy (when the image is "
                        "larger) and the result is guided-upsampled from the photo, so any output size keeps the look "
                        "of the 1024 px result (default 1; >1 bolder strokes, <1 finer; 0 or off: the network sees "
                        "every pixel, strokes of a fixed size in pixels)")


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


def config_from_args(config_type: type[C], args: argparse.Namespace, **given: Any) -> C:
    """A ``config_type`` dataclass from the options named like its fields (an option left at None keeps the
    field's default), with ``given`` on top."""
    values = {f.name: getattr(args, f.name) for f in fields(config_type) if getattr(args, f.name, None) is not None}
    return config_type(**{**values, **given})
