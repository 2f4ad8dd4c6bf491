"""User-facing errors: one clear line, no traceback."""

from __future__ import annotations


class PainterlyError(Exception):
    """An error caused by the user's input (file, option, model), reported in one line."""


class ImageError(PainterlyError):
    """An image could not be read, is too large, or could not be written."""


class ModelError(PainterlyError):
    """A model or weights file is missing, corrupt or incompatible."""


class StyleNotFoundError(PainterlyError, KeyError):
    """An unknown style name was requested."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(PainterlyError, ImportError):
    """A feature needs an optional package that is not installed (e.g. PyTorch for training)."""


def torch_required(what: str) -> MissingDependencyError:
    """The error for ``what`` (e.g. "the meta method") when PyTorch is not installed."""
    return MissingDependencyError(f"{what} needs PyTorch, which is not installed: pip install 'painterly[torch]'")
