"""Export wrappers: nn.Modules with the ONNX contract's inputs and outputs around painterly's models.

* :class:`StylizeGraph` -- ``(image, style, stats, use_stats) -> (output, stats_out)`` around a
  :class:`TransformerNet`: every conditional instance norm computes its (mean, var), blends them with the
  given frozen ``stats`` by ``use_stats`` (arithmetic, no control flow) and reports the computed ones,
  which is the torch :class:`NormStats` collect (``use_stats=0``) and apply (``use_stats=1``) paths.
* :class:`EncoderGraph` -- ``image -> features``: VGG19 to relu4_1 with its preprocessing.
* :class:`DecoderGraph` -- ``features -> output``: the AdaIN decoder, clamped to [0, 1].
* :class:`AdaINPipelineGraph` -- ``(content, style, alpha) -> output``: encoder, AdaIN, decoder in one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..encoders import VGGEncoder
from ..models.adain import ADAIN_LAYER, AdaINDecoder
from ..models.transformer import ConvNormReLU, TransformerNet, reflect_pad


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over H and W, keeping them as size 1. Exported as GlobalAveragePool: onnxruntime runs it fast in
    any layout (a ReduceMean over (H, W) becomes a slow strided reduction once the int8 graph is NHWC)."""
    return F.adaptive_avg_pool2d(x, 1)


def stats_size(net: TransformerNet) -> int:
    """Length of the frozen-statistics vector: mean and var of every CIN layer."""
    return 2 * sum(m.num_features for m in net.norms())


def cin_layers(net: TransformerNet) -> list[ConvNormReLU]:
    """The conv + CIN layers of ``net`` in forward order (the order of the statistics vector)."""
    layers = [net.stem, net.down1, net.down2]
    for block in net.res:
        layers += [block.a, block.b]
    return layers + [net.up1, net.up2]


class StylizeGraph(nn.Module):
    """The stylization graph of the contract (see the module docstring); batch 1."""

    def __init__(self, net: TransformerNet) -> None:
        super().__init__()
        self.net = net.eval()
        self.layers = cin_layers(net)
        if [layer.norm for layer in self.layers] != net.norms():
            raise ValueError("unexpected TransformerNet layout: CIN layers out of forward order")

    def _layer(self, layer: ConvNormReLU, x: torch.Tensor, style: torch.Tensor, frozen: torch.Tensor,
               use: torch.Tensor, offset: int, computed: list[torch.Tensor]) -> torch.Tensor:
        if layer.upsample == "nearest":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        elif layer.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode=layer.upsample, align_corners=False)
        x = layer.conv(reflect_pad(x, layer.pad))
        norm = layer.norm
        c = norm.num_features
        xf = x.float()  # statistics in fp32 (a no-op in fp32 graphs), as the torch model accumulates them
        mean = spatial_mean(xf)
        var = spatial_mean((xf - mean).square())
        computed += [mean.flatten(1), var.flatten(1)]
        keep = 1.0 - use
        mean = mean * keep + frozen[:, offset : offset + c, None, None] * use
        var = var * keep + frozen[:, offset + c : offset + 2 * c, None, None] * use
        gamma, beta = style @ norm.gamma.float(), style @ norm.beta.float()
        scale = gamma[:, :, None, None] * torch.rsqrt(var + norm.eps)
        shift = beta[:, :, None, None] - mean * scale
        x = x * scale.to(x.dtype) + shift.to(x.dtype)
        return F.relu(x) if layer.relu else x

    def forward(self, image: torch.Tensor, style: torch.Tensor, stats: torch.Tensor,
                use_stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        use = use_stats.reshape(1, 1, 1, 1)
        computed: list[torch.Tensor] = []
        offset = 0

        def run(layer: ConvNormReLU, x: torch.Tensor) -> torch.Tensor:
            nonlocal offset
            y = self._layer(layer, x, style, stats, use, offset, computed)
            offset += 2 * layer.norm.num_features
            return y

        net = self.net
        h = run(net.down2, run(net.down1, run(net.stem, image)))
        for block in net.res:
            h = h + run(block.b, run(block.a, h))
        h = run(net.up2, run(net.up1, h))
        k = self.net.config.stem_kernel // 2
        y = self.net.head(reflect_pad(h, k))
        y = torch.sigmoid(y) if self.net.config.output == "sigmoid" else (y + 0.5).clamp(0.0, 1.0)
        return y.float(), torch.cat(computed, dim=1)


class EncoderGraph(nn.Module):
    """RGB [0, 1] image -> VGG relu4_1 features (the encoder's preprocessing inside)."""

    def __init__(self, encoder: VGGEncoder) -> None:
        super().__init__()
        if ADAIN_LAYER not in encoder.layers:
            raise ValueError(f"the encoder must compute {ADAIN_LAYER}")
        self.encoder = encoder.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image, [ADAIN_LAYER])[ADAIN_LAYER].float()


class DecoderGraph(nn.Module):
    """relu4_1 features -> RGB image clamped to [0, 1]."""

    def __init__(self, decoder: AdaINDecoder) -> None:
        super().__init__()
        self.decoder = decoder.eval()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.decoder(features).clamp(0.0, 1.0).float()


def _mean_std(f: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel mean and std (biased variance + eps) as :func:`painterly.losses.calc_mean_std`."""
    f = f.float()
    mean = spatial_mean(f)
    var = spatial_mean((f - mean).square())
    return mean, torch.sqrt(var + eps)


class AdaINPipelineGraph(nn.Module):
    """``(content, style, alpha) -> output``: AdaIN with one style image in one graph (alpha shape [1])."""

    def __init__(self, encoder: VGGEncoder, decoder: AdaINDecoder, eps: float = 1e-5) -> None:
        super().__init__()
        self.encoder, self.decoder, self.eps = encoder.eval(), decoder.eval(), eps

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        fc, fs = (self.encoder(x, [ADAIN_LAYER])[ADAIN_LAYER] for x in (content, style))
        c_mean, c_std = _mean_std(fc, self.eps)
        s_mean, s_std = _mean_std(fs, self.eps)
        scale = s_std / c_std
        target = fc.float() * scale + (s_mean - c_mean * scale)
        a = alpha.reshape(1, 1, 1, 1)
        return self.decoder((a * target + (1.0 - a) * fc.float()).to(fc.dtype)).clamp(0.0, 1.0).float()
