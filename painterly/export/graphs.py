"""Export wrappers: nn.Modules with the ONNX contract's inputs and outputs around painterly's models.

* :class:`StylizeGraph` -- ``(image, style, stats, use_stats) -> (output, stats_out)`` around a
  :class:`TransformerNet`: every conditional instance norm computes its (mean, var), blends them with the
  given frozen ``stats`` by ``use_stats`` (arithmetic, no control flow) and reports the computed ones,
  which is the torch :class:`NormStats` collect (``use_stats=0``) and apply (``use_stats=1``) paths. Its
  output conv runs as an :class:`UnshuffledConv` (the same numbers, twice as fast in onnxruntime).
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
from ..models.transformer import (
    ConvNormReLU,
    TransformerNet,
    reflect_pad,
    subpixel_weights,
    unshuffle_taps,
    unshuffled_weights,
)


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


class _SpaceToDepth(torch.autograd.Function):
    """:func:`space_to_depth` that the TorchScript ONNX exporter writes as one SpaceToDepth node."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, block: int) -> torch.Tensor:  # type: ignore[override]
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // block, block, w // block, block).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(n, block * block * c, h // block, w // block)

    @staticmethod
    def symbolic(g, x, block: int):  # noqa: ANN001, ANN205 (TorchScript graph objects)
        return g.op("SpaceToDepth", x, blocksize_i=block)


def space_to_depth(x: torch.Tensor, block: int) -> torch.Tensor:
    """ONNX SpaceToDepth: (N, C, H, W) -> (N, b*b*C, H/b, W/b), output channel (i*b + j)*C + c holding pixel
    (b*y + i, b*x + j) of channel c (block-major, where ``pixel_unshuffle`` is channel-major). onnxruntime runs
    the SpaceToDepth node about 4x faster than the 6-D transpose ``pixel_unshuffle`` exports as."""
    return _SpaceToDepth.apply(x, block)


class UnshuffledConv(nn.Module):
    """An unpadded conv with few output channels (the 9x9 RGB output conv) as space_to_depth -> conv ->
    pixel_shuffle: the same result (up to float rounding) with b*b times the output channels. CPU conv
    kernels pad the output channels to a vector block of 8-16, so a 3-channel conv wastes most of its work;
    this form does about 1.5x the multiply-adds with no waste: onnxruntime runs the 9x9 16->3 conv in half
    the time (torch bf16 on AMX does not gain, and does not use it). Input height and width plus the kernel
    size minus 1 must be multiples of ``block``.

    The module keeps the original weights and rearranges them in ``forward``: an exported graph stores the
    small kernel (the rearranged one is mostly zeros, 28x larger at block 4) and onnxruntime folds the
    rearrangement into a constant when it loads the file."""

    def __init__(self, conv: nn.Conv2d, block: int = 4) -> None:
        super().__init__()
        if conv.stride != (1, 1) or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1:
            raise ValueError("UnshuffledConv takes a plain unpadded stride-1 conv")
        self.block = block
        self.weight = nn.Parameter(conv.weight.detach(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.register_buffer("taps", unshuffle_taps(conv.kernel_size[0], block), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = unshuffled_weights(self.weight, self.bias, self.block, self.taps)
        out_ch, in_ch = w.shape[:2]
        # block-major input channels, the order of ONNX SpaceToDepth
        w = w.reshape(out_ch, in_ch // self.block**2, self.block**2, *w.shape[2:]).transpose(1, 2).reshape(w.shape)
        y = F.conv2d(space_to_depth(x, self.block), w.to(x.dtype), None if b is None else b.to(x.dtype))
        return F.pixel_shuffle(y, self.block)


def output_conv(net: TransformerNet) -> nn.Module:
    """The network's output conv for export: an :class:`UnshuffledConv` where the padded input keeps the
    contract's multiple-of-4 sizes divisible (block 4, else 2; the padding is even), else (a 1x1 conv) the
    conv itself."""
    pad = 2 * (net.config.stem_kernel // 2)
    return UnshuffledConv(net.head, 4 if pad % 4 == 0 else 2) if pad > 0 else net.head


class StylizeGraph(nn.Module):
    """The stylization graph of the contract (see the module docstring); batch 1."""

    def __init__(self, net: TransformerNet, subpixel: bool = True) -> None:
        super().__init__()
        self.net = net.eval()
        self.subpixel = subpixel
        self.head = output_conv(net)
        self.layers = cin_layers(net)
        if [layer.norm for layer in self.layers] != net.norms():
            raise ValueError("unexpected TransformerNet layout: CIN layers out of forward order")

    def _layer(self, layer: ConvNormReLU, x: torch.Tensor, style: torch.Tensor, frozen: torch.Tensor,
               use: torch.Tensor, offset: int, computed: list[torch.Tensor]) -> torch.Tensor:
        # nearest upsampling + conv runs as a sub-pixel conv at the low resolution; the norm and the ReLU
        # act on its 4 phases per channel (the same statistics), and pixel_shuffle comes last
        phases = 4 if layer.upsample == "nearest" and self.subpixel else 1
        if phases > 1:
            w, b = subpixel_weights(layer.conv.weight, layer.conv.bias)
            x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w.to(x.dtype), None if b is None else b.to(x.dtype))
        else:
            if layer.upsample:
                x = F.interpolate(x, scale_factor=2.0, mode=layer.upsample,
                                  **({} if layer.upsample == "nearest" else {"align_corners": False}))
            x = layer.conv(reflect_pad(x, layer.pad))
        norm = layer.norm
        c = norm.num_features
        xf = x.float()  # statistics in fp32 (a no-op in fp32 graphs), as the torch model accumulates them
        mean = spatial_mean(xf)
        var = spatial_mean((xf - mean).square())
        if phases > 1:  # per channel: the mean over its phases, and the phases' variance about it
            mean4 = mean.reshape(1, c, phases)
            var = (var.reshape(1, c, phases) + (mean4 - mean4.mean(2, keepdim=True)).square()).mean(2)[..., None, None]
            mean = mean4.mean(2)[..., None, None]
        computed += [mean.flatten(1), var.flatten(1)]
        keep = 1.0 - use
        mean = mean * keep + frozen[:, offset : offset + c, None, None] * use
        var = var * keep + frozen[:, offset + c : offset + 2 * c, None, None] * use
        gamma, beta = style @ norm.gamma.float(), style @ norm.beta.float()
        scale = gamma[:, :, None, None] * torch.rsqrt(var + norm.eps)
        shift = beta[:, :, None, None] - mean * scale
        if phases > 1:
            scale, shift = scale.repeat_interleave(phases, 1), shift.repeat_interleave(phases, 1)
        x = x * scale.to(x.dtype) + shift.to(x.dtype)
        x = F.relu(x) if layer.relu else x
        return F.pixel_shuffle(x, 2) if phases > 1 else x

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
        y = self.head(reflect_pad(h, k))
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
        # the plain upsample + conv form (``body``): onnxruntime runs this decoder's sub-pixel form slower
        return self.decoder.body(features).clamp(0.0, 1.0).float()


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
        return self.decoder.body((a * target + (1.0 - a) * fc.float()).to(fc.dtype)).clamp(0.0, 1.0).float()
