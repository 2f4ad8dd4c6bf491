"""Tiny ONNX models for the engine tests, made with the export graph wrappers (painterly.export.graphs)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from painterly.encoders import VGGEncoder
from painterly.export.graphs import DecoderGraph, EncoderGraph, StylizeGraph, stats_size
from painterly.models.adain import ADAIN_LAYER, AdaINDecoder, AdaINDecoderConfig
from painterly.models.io import StylizationModel
from painterly.onnxfile import FORMATS


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict, meta: dict) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=17)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "painterly", json.dumps({"precision": "fp32", "validation": {}, **meta})
    onnx.save(model, str(path))
    return path


def export_stylize(model: StylizationModel, path: Path) -> Path:
    """A ``painterly.onnx.stylize.v1`` graph of ``model``."""
    net = model.net.eval()
    s = stats_size(net)
    args = (torch.rand(1, 3, 32, 32), torch.full((1, net.num_styles), 1.0 / net.num_styles), torch.zeros(1, s),
            torch.zeros(1))
    meta = {"format": FORMATS["stylize"], "kind": "stylize", "styles": [x.to_dict() for x in model.styles],
            "config": net.config.to_dict(), "stats_size": s}
    hw = {2: "height", 3: "width"}
    return _export(StylizeGraph(net), args, path, ["image", "style", "stats", "use_stats"], ["output", "stats_out"],
                   {"image": hw, "output": hw}, meta)


def export_adain(decoder: AdaINDecoder, folder: Path, encoder: VGGEncoder | None = None) -> tuple[Path, Path]:
    """(encoder, decoder) graphs: VGG19 to relu4_1 (default: the bundled weights) and ``decoder``."""
    encoder = encoder or VGGEncoder([ADAIN_LAYER])
    hw = {2: "height", 3: "width"}
    enc = _export(EncoderGraph(encoder), (torch.rand(1, 3, 32, 32),), folder / "encoder.onnx", ["image"],
                  ["features"], {"image": hw, "features": hw}, {"format": FORMATS["encoder"], "kind": "encoder"})
    dec = _export(DecoderGraph(decoder.eval()), (torch.rand(1, decoder.config.in_channels, 4, 4),),
                  folder / "decoder.onnx", ["features"], ["output"], {"features": hw, "output": hw},
                  {"format": FORMATS["decoder"], "kind": "decoder"})
    return enc, dec


def lively_decoder(seed: int = 0) -> AdaINDecoder:
    """A small AdaIN decoder with lively random weights, so its outputs depend on its inputs."""
    torch.manual_seed(seed)
    decoder = AdaINDecoder(AdaINDecoderConfig(width=0.125))
    convs = [m for m in decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    for m in convs:
        torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    convs[0].weight.data *= 1e-3  # relu4_1 activations are O(1000)
    convs[-1].weight.data *= 0.1
    return decoder.eval()


def random_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random uint8 photo (H, W, 3): noise upscaled, so the network sees structure."""
    small = np.random.default_rng(seed).random((max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
    x = torch.nn.functional.interpolate(torch.from_numpy(small).permute(2, 0, 1)[None], size=(h, w), mode="bilinear",
                                        align_corners=False)
    return (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
