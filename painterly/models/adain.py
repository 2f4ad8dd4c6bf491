"""AdaIN arbitrary style transfer (Huang & Belongie, "Arbitrary Style Transfer in Real-time with
Adaptive Instance Normalization", 2017).

The photo and the painting go through the same frozen VGG19 (up to relu4_1). Adaptive instance
normalization gives the photo's features the painting's channel-wise mean and standard deviation;
a trained decoder turns those features back into an image. Everything the paper describes as
user control happens in feature space:

* ``alpha`` blends the AdaIN target with the photo's own features (0 = reconstruction);
* several styles are interpolated by mixing their statistics with normalized weights (AdaIN is
  linear in the statistics, so this equals mixing the AdaIN outputs as in the paper);
* a mask assigns one style per region; each region's content statistics are computed over that
  region only (soft, area-resized masks at the feature resolution blend region borders).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..encoders import VGGEncoder, VGGWeights
from ..engines.adain_numpy import normalize_weights
from ..losses import calc_mean_std
from .tensorfile import load_module, pretrained_path, save_tensors
from .transformer import subpixel_conv

#: The encoder layer AdaIN works on, and the layers of the style loss.
ADAIN_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DECODER_FORMAT = "painterly.adain-decoder.v1"
#: File name of the shipped decoder in ``painterly/pretrained/``.
DECODER_FILE = "adain_decoder.safetensors"

Stats = tuple[torch.Tensor, torch.Tensor]


def adaptive_instance_normalization(content_feat: torch.Tensor, style_feat: torch.Tensor,
                                    eps: float = 1e-5) -> torch.Tensor:
    """Content features with the style features' channel-wise mean and std (both (B, C, H, W)).

    A style batch of 1 broadcasts over the content batch. Computed in fp32; the result has
    the content features' dtype.
    """
    return adain_from_stats(content_feat, calc_mean_std(style_feat, eps), eps)


def adain_from_stats(content_feat: torch.Tensor, style_stats: Stats, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN with precomputed style statistics ``(mean, std)``, each (B or 1, C, 1, 1)."""
    s_mean, s_std = style_stats
    c_mean, c_std = calc_mean_std(content_feat, eps)
    scale = s_std / c_std  # one multiply-add per element, in the features' dtype
    shift = s_mean - c_mean * scale
    return torch.addcmul(shift.to(content_feat.dtype), content_feat, scale.to(content_feat.dtype))


def masked_mean_std(feat: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> Stats:
    """Channel mean/std of ``feat`` (B, C, H, W) weighted by ``weight`` (B or 1, 1, H, W) >= 0."""
    f = feat.float()
    w = weight.float()
    total = w.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
    mean = (f * w).sum(dim=(2, 3), keepdim=True) / total
    var = ((f - mean).pow(2) * w).sum(dim=(2, 3), keepdim=True) / total
    return mean, (var + eps).sqrt()


def mix_stats(stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
    """Convex combination of style statistics; ``weights`` must already sum to 1."""
    mean = sum(w * m for w, (m, _) in zip(weights, stats, strict=True))
    std = sum(w * s for w, (_, s) in zip(weights, stats, strict=True))
    return mean, std


def region_weights(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One-hot region masks (B or 1, K, H, W) -> soft weights at feature ``size`` summing to 1 per position.

    Area interpolation keeps each region's share of every feature cell, so borders blend
    instead of jumping at the 8x coarser feature grid.
    """
    if mask.dim() != 4:
        raise ValueError(f"region masks must be (B, K, H, W), got shape {tuple(mask.shape)}")
    w = F.interpolate(mask.float(), size=size, mode="area")
    return w / w.sum(dim=1, keepdim=True).clamp_min(1e-8)


def stylize_features(content_feat: torch.Tensor, styles: Sequence[Stats | None], weights: Sequence[float] | None = None,
                     regions: torch.Tensor | None = None, alpha: float = 1.0) -> torch.Tensor:
    """The decoder's input: AdaIN target for one or more styles, blended with the content by ``alpha``.

    Args:
        content_feat: (B, C, H, W) encoder features of the photo.
        styles: per style ``(mean, std)``; ``None`` in a region means "keep the photo" there.
        weights: mixing weights (normalized here) when there is no mask; ignored with ``regions``.
        regions: (B or 1, K, H', W') one-hot masks, one channel per style, any resolution.
        alpha: 1 = full style, 0 = the content features unchanged.
    """
    if not 0.0 <= alpha <= 1.0 or not math.isfinite(alpha):
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if not styles:
        raise ValueError("at least one style is required")
    if regions is None:
        if any(s is None for s in styles):
            raise ValueError("'keep the photo' styles need a mask")
        w = normalize_weights(weights, len(styles))
        target = adain_from_stats(content_feat, mix_stats(styles, w))  # type: ignore[arg-type]
    else:
        if regions.shape[1] != len(styles):
            raise ValueError(f"{regions.shape[1]} mask regions for {len(styles)} styles")
        soft = region_weights(regions, tuple(content_feat.shape[-2:]))
        target = torch.zeros_like(content_feat, dtype=torch.float32)
        for k, stats in enumerate(styles):
            wk = soft[:, k : k + 1]
            if float(wk.sum()) <= 0:
                continue
            if stats is None:
                part = content_feat.float()
            else:
                c_mean, c_std = masked_mean_std(content_feat, wk)
                scale = stats[1] / c_std
                part = content_feat.float() * scale + (stats[0] - c_mean * scale)
            target = target + wk * part
        target = target.to(content_feat.dtype)
    if alpha >= 1.0:
        return target
    return alpha * target + (1.0 - alpha) * content_feat


@dataclass
class AdaINDecoderConfig:
    """Shape of the decoder: a mirror of VGG19 from relu4_1 back to RGB.

    ``width`` scales the 256/128/64 channel stages (1.0 is the paper's decoder); ``in_channels``
    is the width of the encoder layer it inverts (512 for relu4_1).
    """

    in_channels: int = 512
    width: float = 1.0

    def channels(self) -> tuple[int, int, int]:
        return tuple(max(8, round(c * self.width)) for c in (256, 128, 64))  # type: ignore[return-value]


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class AdaINDecoder(nn.Module):
    """relu4_1 features -> RGB image in [0, 1] (not clamped: clamp for display, not for training).

    Reflection-padded 3x3 convolutions, nearest-neighbour upsampling, no normalization layers,
    mirroring VGG19's conv4_1 ... conv1_1 (the layer counts of the paper's decoder).
    """

    def __init__(self, config: AdaINDecoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or AdaINDecoderConfig()
        self.training_info: dict[str, Any] = {}  # facts about how it was trained (from its file)
        c3, c2, c1 = self.config.channels()
        up = [nn.Upsample(scale_factor=2, mode="nearest")]
        self.body = nn.Sequential(
            *_conv(self.config.in_channels, c3), *up,
            *_conv(c3, c3), *_conv(c3, c3), *_conv(c3, c3), *_conv(c3, c2), *up,
            *_conv(c2, c2), *_conv(c2, c1), *up,
            *_conv(c1, c1), *_conv(c1, 3, relu=False),
        )
        with torch.no_grad():  # start near mid-gray so the first steps are not spent finding the range
            self.body[-1].bias.fill_(0.45)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.body(feat)
        # inference: each upsampling + conv pair runs as one sub-pixel conv at the low resolution (same numbers)
        x, layers, i = feat, list(self.body), 0
        while i < len(layers):
            if isinstance(layers[i], nn.Upsample) and i + 1 < len(layers):
                conv = layers[i + 1]
                x = subpixel_conv(x, conv.weight, conv.bias)
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x


class AdaIN(nn.Module):
    """Encoder (frozen VGG19 to relu4_1) + AdaIN + trained decoder.

    ``forward(content, style, alpha)`` stylizes a batch of photos (B, 3, H, W) in [0, 1]
    with one style image (1 or B, 3, h, w) or a list of style images (mixed by
    ``style_weights``, or assigned to ``mask`` regions).
    """

    def __init__(self, decoder: AdaINDecoder | None = None, encoder: VGGEncoder | None = None,
                 weights: VGGWeights | None = VGGWeights()) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else VGGEncoder([ADAIN_LAYER], weights=weights)
        if ADAIN_LAYER not in self.encoder.layers:
            raise ValueError(f"the AdaIN encoder must return {ADAIN_LAYER}")
        self.decoder = decoder if decoder is not None else AdaINDecoder()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, [ADAIN_LAYER])[ADAIN_LAYER]

    def style_stats(self, style: torch.Tensor) -> Stats:
        """Channel mean/std of a style image's relu4_1 features (computed once per style)."""
        return calc_mean_std(self.encode(style))

    def forward(self, content: torch.Tensor, style: torch.Tensor | Sequence[torch.Tensor], alpha: float = 1.0,
                style_weights: Sequence[float] | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        styles = [style] if isinstance(style, torch.Tensor) else list(style)
        stats = [self.style_stats(s) for s in styles]
        return self.decode(self.encode(content), stats, alpha, style_weights, mask)

    def decode(self, content_feat: torch.Tensor, stats: Sequence[Stats | None], alpha: float = 1.0,
               style_weights: Sequence[float] | None = None, regions: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder output for precomputed content features and style statistics."""
        return self.decoder(stylize_features(content_feat, stats, style_weights, regions, alpha))


def save_decoder(decoder: AdaINDecoder, path: str | os.PathLike, training: Mapping[str, Any] | None = None,
                 half: bool = False) -> Path:
    """Write a decoder atomically as safetensors with JSON metadata ``{format, config, training}``."""
    header = {"format": DECODER_FORMAT, "config": asdict(decoder.config), "layer": ADAIN_LAYER,
              "training": dict(training or {})}
    return save_tensors(decoder.state_dict(), header, path, half)


def load_decoder(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> AdaINDecoder:
    """Read a decoder (default: the shipped one); missing/corrupt/foreign files -> :class:`ModelError`."""
    path = Path(path) if path is not None else pretrained_path(DECODER_FILE)
    decoder, header = load_module(path, DECODER_FORMAT, "AdaIN decoder",
                                  lambda h: AdaINDecoder(AdaINDecoderConfig(**h["config"])))
    decoder.training_info = dict(header.get("training") or {})
    return decoder.to(device)
