"""int8 static quantization of exported graphs (onnxruntime.quantization, QDQ, per-channel weights).

Activations are uint8 and weights int8 (the x86 VNNI/AMX-int8 kernels' format), calibrated on photos
(the bundled ones with simple augmentations, or a user folder). Only convolutions are quantized: the
instance-norm statistics, the style mixing and the AdaIN arithmetic work on small tensors or need the
range of fp32. Convolutions that quantization hurts most can stay float (``keep_float``), chosen by
:func:`sensitivity` (see the defaults in :data:`KEEP_FLOAT`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Convolutions kept in float by default, per graph kind, as positions in the graph's list of Conv
#: nodes (negative: from the end); measured with :func:`sensitivity`.
KEEP_FLOAT: dict[str, tuple[int, ...]] = {
    "stylize": (0, 1, -2, -1),  # the convs at full and half resolution (32-64 channels): stem, down1, up2, head
    "encoder": (0, -1),  # conv1_1 and conv4_1
    "decoder": (0, -2, -1),  # the first conv and the last two (full resolution)
    "pipeline": (0, 9, 18, -2, -1),  # the encoder twice (9 convs each), then the decoder
}
#: Calibration method per graph kind (measured with :func:`sensitivity`).
METHOD: dict[str, str] = {"stylize": "percentile", "encoder": "percentile", "pipeline": "percentile"}
CALIBRATION_SIZE = 256


def calibration_images(size: int = CALIBRATION_SIZE, folder: str | os.PathLike | None = None,
                       multiple: int = 8) -> list[torch.Tensor]:
    """Calibration photos: each image, mirrored, a zoomed-in crop, darker and lighter (``size`` px longest side)."""
    from .onnx import photos

    out = []
    for x in photos(size, folder, multiple):
        h, w = x.shape[-2:]
        ch, cw = (int(s * 0.6) // multiple * multiple for s in (h, w))
        crop = x[..., (h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
        zoom = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
        out += [x, x.flip(-1), zoom, (x * 0.6).pow(1.2), (x * 1.3 + 0.05).clamp(0, 1)]
    return out


def _same_shape(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Every image turned (portrait/landscape) and resized to the first one's shape (histogram calibration
    stacks the activations of all images)."""
    size = tuple(images[0].shape[-2:])
    out = []
    for x in images:
        if (x.shape[-2] > x.shape[-1]) != (size[0] > size[1]):
            x = x.transpose(-2, -1)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
        out.append(x.contiguous())
    return out


class _Reader:
    """onnxruntime CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds, self.i = feeds, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.feeds):
            return None
        self.i += 1
        return self.feeds[self.i - 1]

    def rewind(self) -> None:
        self.i = 0


def conv_nodes(model: Any) -> list[str]:
    """Names of the graph's Conv nodes in order."""
    return [n.name for n in model.graph.node if n.op_type == "Conv"]


def quantize(model: Any, spec: Any, calibration: Sequence[torch.Tensor] | str | os.PathLike | None = None,
             keep_float: Sequence[int] | None = None, op_types: Sequence[str] | None = ("Conv",),
             method: str | None = None, feeds: list[dict[str, np.ndarray]] | None = None) -> tuple[Any, dict[str, Any]]:
    """An int8 QDQ copy of the fp32 ``onnx.ModelProto`` ``model`` exported from ``spec``, and facts about it.

    ``calibration``: images, a folder of photos, or ``None`` (bundled photos, augmented). ``keep_float``:
    positions of Conv nodes to leave in float (default :data:`KEEP_FLOAT`). ``method``: "minmax",
    "entropy" or "percentile" calibration (default :data:`METHOD`, else minmax). ``feeds``: precomputed
    calibration feeds (overrides images).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if feeds is None:
        multiple = 4 if spec.kind == "stylize" else 8
        if calibration is None or isinstance(calibration, (str, os.PathLike)):
            images = calibration_images(folder=calibration, multiple=multiple)
        else:
            images = list(calibration)
        feeds = spec.calibrate(_same_shape(images))
    convs = conv_nodes(model)
    keep = KEEP_FLOAT.get(spec.kind, ()) if keep_float is None else tuple(keep_float)
    method = method or METHOD.get(spec.kind, "minmax")
    exclude = sorted({convs[i] for i in keep if -len(convs) <= i < len(convs)})
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory(prefix="painterly-quant-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quantize_static(str(src), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(op_types) if op_types else None, nodes_to_exclude=exclude,
                        calibrate_method=methods[method],
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        quantized = onnx.load(str(dst))
    info = {"format": "QDQ", "activations": "uint8", "weights": "int8 per channel", "op_types": list(op_types),
            "calibration": {"images": len(feeds), "method": method,
                            "source": str(calibration) if isinstance(calibration, (str, os.PathLike))
                            else "bundled photos, augmented" if calibration is None else "given images"},
            "float_convs": exclude, "convs": len(convs)}
    return quantized, info


def sensitivity(model: Any, spec: Any, feeds: list[dict[str, np.ndarray]],
                configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validation numbers (see :func:`painterly.export.onnx.run_cases`) of int8 variants of ``model``.

    ``configs``: name -> keyword arguments of :func:`quantize` (``keep_float``, ``op_types``, ``method``).
    """
    import onnxruntime as ort

    from .onnx import run_cases

    results = {}
    for name, kwargs in configs.items():
        q, _ = quantize(model, spec, feeds=feeds, **kwargs)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        session = ort.InferenceSession(q.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        results[name] = run_cases(session, spec.cases, spec.kind)
    return results
