"""Safetensors files with a JSON header (the ``"painterly"`` metadata key), and the shipped-weights folder.

Used by the arbitrary-style models (AdaIN decoder, meta network); each defines its own
``format`` string, checked on load so a file of one kind is never read as another.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError
from ..imageio import atomic_write_bytes
from ..paths import pretrained_path

__all__ = ["load_module", "load_tensors", "pretrained_path", "save_tensors"]


def save_tensors(state: Mapping[str, torch.Tensor], header: Mapping[str, Any], path: str | os.PathLike,
                 half: bool = False) -> Path:
    """Atomic safetensors write of ``state`` with ``header`` as JSON under the ``"painterly"`` key."""
    from safetensors.torch import save

    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu()
        tensors[k] = (v.half() if half and v.is_floating_point() else v).contiguous().clone()
    path = Path(path)
    try:
        atomic_write_bytes(path, save(tensors, metadata={"painterly": json.dumps(dict(header))}))
    except OSError as exc:
        raise ModelError(f"cannot write '{path}': {exc.strerror or exc}") from None
    return path


def load_tensors(path: Path, fmt: str, what: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON header of a painterly safetensors file of format ``fmt``."""
    from safetensors import safe_open

    if not path.is_file():
        hint = " (the shipped weights are missing from this installation)" if path.parent.name == "pretrained" else ""
        raise ModelError(f"{what} file '{path}' not found{hint}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception:  # safetensors raises several exception types on damaged input
        raise ModelError(f"'{path}' is not a valid safetensors file (corrupt or wrong format)") from None
    try:
        header = json.loads(meta["painterly"])
    except (KeyError, ValueError):
        header = {}
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise ModelError(f"'{path}' is not a painterly {what} file")
    return tensors, header


def load_module(path: str | os.PathLike, fmt: str, what: str,
                build: Callable[[dict[str, Any]], torch.nn.Module]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A module built by ``build(header)`` from a painterly safetensors file of format ``fmt``, with its
    weights loaded (as fp32), in eval mode without gradients, and the file's header. A missing, corrupt
    or foreign file, a bad configuration or weights that do not fit give one :class:`ModelError` line."""
    path = Path(path)
    tensors, header = load_tensors(path, fmt, what)
    try:
        module = build(header)
    except (KeyError, ValueError, TypeError):
        raise ModelError(f"'{path}' has no valid {what} configuration") from None
    try:
        module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    except RuntimeError:
        raise ModelError(f"'{path}': weights do not match the {what} configuration (damaged file?)") from None
    return module.requires_grad_(False).eval(), header
