"""Tiny ONNX models for the engine tests, written by the real exporter (painterly.export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from painterly.encoders import VGGEncoder
from painterly.export.onnx import decoder_spec, encoder_spec, export_graph, stylize_spec
from painterly.models.adain import ADAIN_LAYER, AdaINDecoder, AdaINDecoderConfig
from painterly.models.io import StylizationModel


def _images(n: int = 2, size: int = 32) -> list[torch.Tensor]:
    """Small validation images for the exporter (its default is the bundled photos at 384 px: slow)."""
    return [torch.from_numpy(random_photo(size, size + 8, seed=i)).permute(2, 0, 1)[None].float() / 255
            for i in range(n)]


def export_stylize(model: StylizationModel, path: Path) -> Path:
    """A ``painterly.onnx.stylize.v1`` fp32 graph of ``model`` (weights stored in fp32)."""
    export_graph(stylize_spec(model, images=_images()), path, "fp32", half_weights=False)
    return path


def export_adain(decoder: AdaINDecoder, folder: Path, encoder: VGGEncoder | None = None) -> tuple[Path, Path]:
    """(encoder, decoder) fp32 graphs: VGG19 to relu4_1 (default: the bundled weights) and ``decoder``."""
    encoder = encoder or VGGEncoder([ADAIN_LAYER])
    enc, dec = folder / "encoder.onnx", folder / "decoder.onnx"
    # not strict: the fp32 limit is an absolute 2e-3, and relu4_1 features are O(1000) (seen: 5e-3, PSNR 99 dB)
    export_graph(encoder_spec(encoder, images=_images()), enc, "fp32", half_weights=False, strict=False)
    export_graph(decoder_spec(decoder, encoder, size=32, images=_images()), dec, "fp32", half_weights=False,
                 strict=False)
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
