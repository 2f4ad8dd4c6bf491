"""Saving and loading stylization models: safetensors weights + JSON metadata.

File layout: the network's state dict as tensors (fp32, or fp16 with ``half=True``), and one
metadata entry ``"painterly"`` holding JSON ``{"format", "config", "styles", "training"}``
(``styles``: list of ``{name, title, artist, source}``; ``training``: free-form facts such as
steps, time, losses).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError, StyleNotFoundError
from ..styles import StyleInfo, StyleSpec, style_weights
from .tensorfile import load_module, save_tensors
from .transformer import TransformerConfig, TransformerNet

MODEL_FORMAT = "painterly.transformer.v1"


@dataclass
class StylizationModel:
    """A trained :class:`TransformerNet` and the styles its style vector indexes."""

    net: TransformerNet
    styles: list[StyleInfo]
    training: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def __post_init__(self) -> None:
        if len(self.styles) != self.net.num_styles:
            raise ModelError(f"model has {self.net.num_styles} style rows but {len(self.styles)} style names")
        names = [s.name for s in self.styles]
        if len(set(names)) != len(names):
            raise ModelError(f"duplicate style names in model: {names}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.styles]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            where = f" in '{self.path}'" if self.path else ""
            raise StyleNotFoundError(f"unknown style '{name}'{where}; available: {', '.join(self.names)}") from None

    def style_weights(self, style: StyleSpec) -> torch.Tensor:
        """Style name, ``{name: weight}`` or list of names -> normalised (N,) weight vector."""
        return torch.from_numpy(style_weights(self.names, style, self.path or ""))

    def subset(self, names: Sequence[str]) -> StylizationModel:
        """A copy with only the styles ``names`` (in that order); the shared weights are kept as they are.

        Each kept style's outputs are unchanged (used to ship fewer styles, or to hold a style out).
        """
        indices = [self.index(n) for n in names]
        if not indices or len(set(indices)) != len(indices):
            raise ModelError("give one or more distinct style names")
        net = copy.deepcopy(self.net)
        net.select_styles(indices)
        training = {**copy.deepcopy(self.training), "subset_of": [s.name for s in self.styles]}
        return StylizationModel(net, [self.styles[i] for i in indices], training)


def save_model(model: StylizationModel, path: str | os.PathLike, half: bool = False) -> Path:
    """Write ``model`` atomically as safetensors (``half``: store float tensors as fp16)."""
    header = {
        "format": MODEL_FORMAT,
        "config": model.net.config.to_dict(),
        "styles": [s.to_dict() for s in model.styles],
        "training": model.training,
    }
    return save_tensors(model.net.state_dict(), header, path, half=half)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> StylizationModel:
    """Read a model written by :func:`save_model`; missing/corrupt/foreign files -> :class:`ModelError`."""
    net, header = load_module(path, MODEL_FORMAT, "stylization model",
                              lambda h: TransformerNet(TransformerConfig.from_dict(h["config"])))
    try:
        styles = [StyleInfo.from_dict(s) for s in header["styles"]]
    except (KeyError, ValueError, TypeError):
        raise ModelError(f"'{path}' is not a painterly stylization model") from None
    net.to(device)
    return StylizationModel(net, styles, dict(header.get("training") or {}), str(path))
