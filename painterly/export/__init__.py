"""ONNX export of every model painterly makes or ships, each file validated against the torch model.

``export(model, output, precision)`` with ``model`` a stylization model file (multi-style, or a meta
network's ``--save-model`` file), ``"shipped"`` (the shipped multi-style model) or ``"adain"`` (with
``part`` ``"encoder"``, ``"decoder"`` or ``"pipeline"``). Reading the files back needs no torch: see
:mod:`painterly.onnxfile`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelError, PainterlyError

PARTS = ("encoder", "decoder", "pipeline")
#: Names of the shipped files in ``painterly/pretrained/`` (fixed by the ONNX contract).
SHIPPED = {"stylize": "multistyle.{precision}.onnx", "encoder": "vgg19_relu4_1.{precision}.onnx",
           "decoder": "adain_decoder.{precision}.onnx"}


def export(model: str | os.PathLike, output: str | os.PathLike, precision: str = "fp32", *, part: str | None = None,
           calibration: str | os.PathLike | None = None, size: int = 384, half_weights: bool = True,
           decoder: str | os.PathLike | None = None, strict: bool = True) -> dict[str, Any]:
    """Export ``model`` to ``output`` (.onnx) and return the file's metadata (with its ``validation``).

    Args:
        model: a stylization model file, ``"shipped"`` or ``"adain"``.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        part: for ``"adain"``: ``"encoder"`` (VGG19 to relu4_1), ``"decoder"`` or ``"pipeline"``
            (content, style, alpha -> output in one graph).
        calibration: folder of photos for int8 calibration (default: the bundled photos, augmented).
        size: longest side of the validation photos.
        half_weights: fp32 graphs store their weights as fp16 (half the file; cast back in the graph).
        decoder: AdaIN decoder file (default: the shipped one).
        strict: refuse a file whose validation fails (see :data:`painterly.export.onnx.LIMITS`).
    """
    from .onnx import check_precision, decoder_spec, encoder_spec, export_graph, pipeline_spec, stylize_spec

    check_precision(precision)
    if calibration is not None and precision != "int8":
        raise PainterlyError("--calibration applies to int8 exports only")
    if int(size) < 32:
        raise PainterlyError(f"--size must be at least 32 pixels, got {size}")
    out = _check_output(output)
    spec_name = str(model)
    if spec_name == "adain":
        if part not in PARTS:
            raise PainterlyError(f"'adain' has several graphs: choose --part {', '.join(PARTS)}")
        from ..models.adain import DECODER_FILE, load_decoder
        from ..models.tensorfile import pretrained_path

        if part == "encoder":
            spec, source = encoder_spec(size=size), None
        else:
            source = Path(decoder) if decoder is not None else pretrained_path(DECODER_FILE)
            dec = load_decoder(source)
            spec = (decoder_spec if part == "decoder" else pipeline_spec)(dec, size=size)
    else:
        if part is not None:
            raise PainterlyError("--part applies to 'adain' only")
        from ..methods.stylize import DEFAULT_MODEL
        from ..models.io import load_model

        source = DEFAULT_MODEL if spec_name == "shipped" else Path(model)
        if spec_name != "shipped" and not source.exists() and source.suffix != ".safetensors":
            raise PainterlyError(f"unknown model '{model}': give a stylization model file (.safetensors), "
                                 "'shipped' or 'adain'")
        try:
            loaded = load_model(source)
        except ModelError as exc:
            raise ModelError(f"{exc} (export takes stylization models: the shipped multi-style model, a "
                             "`painterly train` model or a `painterly transfer --method meta --save-model` "
                             "file)") from None
        spec = stylize_spec(loaded, size=size)
    return export_graph(spec, out, precision, half_weights=half_weights, calibration=calibration, source=source,
                        strict=strict)


def _check_output(output: str | os.PathLike) -> Path:
    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise PainterlyError(f"cannot write '{out}': the output must be an .onnx file")
    if out.is_dir():
        raise PainterlyError(f"cannot write '{out}': it is a directory")
    parent = next((p for p in [out.parent, *out.parent.parents] if p.exists()), None)
    if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK)):
        why = "is a file, not a folder" if not parent.is_dir() else "is not writable"
        raise PainterlyError(f"cannot write '{out}': '{parent}' {why}")
    return out
