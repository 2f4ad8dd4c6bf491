"""painterly: neural style transfer, from the optimization method of Gatys et al. to fast
feed-forward and arbitrary-style networks.

``stylize``, ``transfer``, ``list_styles``, ``list_paintings`` and image I/O need no torch (they run
the shipped ONNX models on onnxruntime); the torch-only names (``optimize``, ``VGGEncoder``, ``meta``,
``PerceptualLoss`` ...) are imported on first use and need ``pip install 'painterly[torch]'``.
"""

from __future__ import annotations

import importlib

from .errors import ImageError, ModelError, PainterlyError, StyleNotFoundError, torch_required
from .imageio import load_image, save_image
from .methods.stylize import list_styles, stylize
from .methods.transfer import prepare_transfer, transfer
from .paintings import list_paintings

__version__ = "0.1.0"

#: Torch-only names -> the module that defines them (imported on first access).
_TORCH_ONLY = {
    "VGGEncoder": "painterly.encoders",
    "VGGWeights": "painterly.encoders",
    "PerceptualLoss": "painterly.losses",
    "gram_matrix": "painterly.losses",
    "optimize": "painterly.methods.optimize",
    "OptimizeConfig": "painterly.methods.optimize",
    "lattice_score": "painterly.metrics",
    "score_stylization": "painterly.metrics",
    "meta": None,  # the module painterly.models.meta itself
}
#: Subpackages loaded on first access: painterly.video is callable, ``painterly.video(...)``
#: (needs ``pip install 'painterly[video]'`` when run).
_LAZY_MODULES = {"video": "painterly.video"}

__all__ = [
    "PainterlyError",
    "ImageError",
    "ModelError",
    "StyleNotFoundError",
    "load_image",
    "save_image",
    "VGGEncoder",
    "VGGWeights",
    "PerceptualLoss",
    "gram_matrix",
    "optimize",
    "OptimizeConfig",
    "lattice_score",
    "score_stylization",
    "list_paintings",
    "transfer",
    "prepare_transfer",
    "meta",
    "stylize",
    "list_styles",
    "video",
]


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = value
        return value
    if name not in _TORCH_ONLY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _TORCH_ONLY[name]
    try:
        value = importlib.import_module(module or f"{__name__}.models.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "torch":
            raise torch_required(f"painterly.{name}") from None
        raise
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
