"""Channel and block pruning of a :class:`TransformerNet`: a narrower network that starts where the
wide one is, for distillation to continue from (instead of from random weights).

Every CIN layer normalises each channel on its own, so dropping a channel leaves the statistics of the
others untouched: a pruned network only loses the dropped channels' contributions downstream. A channel's
importance is the size of what it passes on: the root mean square over styles of ``relu(gamma * z + beta)``
for a unit-normal ``z`` (what the channel carries after its norm), times the norm of the next convolution's
weights that read it. The residual stream (the 1/4-resolution width) keeps one set of channels through
every block; the blocks kept are those whose removal changes the stream least (the smallest residual
branches, measured on ``probe`` images).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from .adain import AdaINDecoder, AdaINDecoderConfig
from .transformer import ConditionalInstanceNorm2d, ConvNormReLU, ResidualBlock, TransformerNet

__all__ = ["prune_decoder", "prune_transformer"]


def _carried(norm: ConditionalInstanceNorm2d, relu: bool = True) -> torch.Tensor:
    """(C,) RMS over styles of what each channel carries after its norm (and ReLU), for z ~ N(0, 1)."""
    g, b = norm.gamma.detach(), norm.beta.detach()
    if not relu:
        return (g.square() + b.square()).mean(0).sqrt()
    z = torch.linspace(-3, 3, 61)
    pdf = torch.exp(-z.square() / 2)
    pdf = pdf / pdf.sum()
    act = torch.relu(g[..., None] * z + b[..., None]).square()  # (S, C, Z)
    return (act * pdf).sum(-1).mean(0).sqrt()


def _reads(conv: nn.Conv2d) -> torch.Tensor:
    """(Cin,) norm of the weights that read each input channel."""
    return conv.weight.detach().transpose(0, 1).flatten(1).norm(dim=1)


def _top(score: torch.Tensor, k: int) -> torch.Tensor:
    if k > score.numel():
        raise ValueError(f"cannot keep {k} of {score.numel()} channels")
    return score.topk(k).indices.sort().values


@torch.no_grad()
def _copy_layer(dst: ConvNormReLU | nn.Conv2d, src: ConvNormReLU | nn.Conv2d, cin: torch.Tensor,
                cout: torch.Tensor | None) -> None:
    """Copy ``src``'s weights for the kept input (``cin``) and output (``cout``; None: all) channels."""
    conv_d, conv_s = (dst.conv, src.conv) if isinstance(dst, ConvNormReLU) else (dst, src)
    w = conv_s.weight[:, cin]
    bias = conv_s.bias
    if cout is not None:
        w, bias = w[cout], bias[cout] if bias is not None else None
    conv_d.weight.copy_(w)
    if bias is not None:
        conv_d.bias.copy_(bias)
    if isinstance(dst, ConvNormReLU):
        dst.norm.gamma.copy_(src.norm.gamma[:, cout])
        dst.norm.beta.copy_(src.norm.beta[:, cout])


@torch.no_grad()
def _branch_sizes(net: TransformerNet, probe: torch.Tensor) -> list[float]:
    """Mean |residual branch| / |stream| of each block over every style, on ``probe`` images."""
    sizes = [0.0] * len(net.res)
    for s in range(net.num_styles):
        style = net.style_vector(s, probe.shape[0], probe.device)
        h = net.down2(net.down1(net.stem(probe, style), style), style)
        for i, block in enumerate(net.res):
            branch = block.b(block.a(h, style), style)
            sizes[i] += float(branch.norm() / h.norm().clamp_min(1e-8)) / net.num_styles
            h = h + branch
    return sizes


@torch.no_grad()
def prune_transformer(net: TransformerNet, channels: Sequence[int], num_residual: int | None = None,
                      probe: torch.Tensor | None = None) -> TransformerNet:
    """A copy of ``net`` with ``channels`` (full, 1/2, 1/4 resolution widths) and ``num_residual`` blocks.

    ``probe``: photos (B, 3, H, W) in [0, 1] to rank the residual blocks on (needed only when blocks are
    dropped; default: smooth random images). The stem and head kernels stay the teacher's.
    """
    cfg = net.config
    if cfg.alpha != 1.0:
        raise ValueError("prune a network with alpha 1.0 (its widths are its channels)")
    c1, c2, c3 = (int(c) for c in channels)
    blocks = len(net.res) if num_residual is None else int(num_residual)
    if not 0 <= blocks <= len(net.res):
        raise ValueError(f"cannot keep {blocks} of {len(net.res)} residual blocks")
    net = net.float().eval()
    if blocks < len(net.res):
        if probe is None:
            gen = torch.Generator().manual_seed(0)
            probe = torch.nn.functional.interpolate(torch.rand(2, 3, 16, 16, generator=gen), size=(128, 128),
                                                    mode="bilinear", align_corners=False)
        sizes = _branch_sizes(net, probe)
        keep_blocks = sorted(sorted(range(len(net.res)), key=lambda i: -sizes[i])[:blocks])
    else:
        keep_blocks = list(range(len(net.res)))
    kept = [net.res[i] for i in keep_blocks]

    k1 = _top(_carried(net.stem.norm) * _reads(net.down1.conv), c1)
    k2 = _top(_carried(net.down1.norm) * _reads(net.down2.conv), c2)
    stream = _carried(net.down2.norm) * _reads(net.up1.conv)
    for block in kept:  # what the blocks add to the stream, and how much they read from it
        stream = stream + _carried(block.b.norm, relu=False) + 0.5 * _reads(block.a.conv)
    k3 = _top(stream, c3)
    k2_up = _top(_carried(net.up1.norm) * _reads(net.up2.conv), c2)
    k1_up = _top(_carried(net.up2.norm) * _reads(net.head), c1)

    small = TransformerNet(replace(cfg, channels=(c1, c2, c3), num_residual=blocks))
    small.res = nn.ModuleList(ResidualBlock(c3, cfg.num_styles, cfg.eps) for _ in kept)
    every = torch.arange(3)
    _copy_layer(small.stem, net.stem, every, k1)
    _copy_layer(small.down1, net.down1, k1, k2)
    _copy_layer(small.down2, net.down2, k2, k3)
    for dst, src in zip(small.res, kept, strict=True):
        mid = _top(_carried(src.a.norm) * _reads(src.b.conv), c3)
        _copy_layer(dst.a, src.a, k3, mid)
        _copy_layer(dst.b, src.b, mid, k3)
    _copy_layer(small.up1, net.up1, k3, k2_up)
    _copy_layer(small.up2, net.up2, k2_up, k1_up)
    _copy_layer(small.head, net.head, k1_up, None)
    return small.eval()


@torch.no_grad()
def prune_decoder(decoder: AdaINDecoder, width: float) -> AdaINDecoder:
    """``decoder`` (an AdaIN decoder) narrowed to ``width``: each conv keeps the output channels that matter
    most to what follows, scored without data as the size of the filter that makes the channel (weights and
    bias; a ReLU follows) times the norm of the next conv's weights that read it. The last conv keeps its 3
    outputs, the first its 512 inputs. Same ``width`` as the decoder: an exact copy."""
    small = AdaINDecoder(AdaINDecoderConfig(in_channels=decoder.config.in_channels, width=width))
    src = [m for m in decoder.body if isinstance(m, nn.Conv2d)]
    dst = [m for m in small.body if isinstance(m, nn.Conv2d)]
    keep_in = torch.arange(src[0].in_channels)
    for i, (d, s) in enumerate(zip(dst, src, strict=True)):
        if d.out_channels > s.out_channels:
            raise ValueError(f"cannot widen a decoder ({s.out_channels} -> {d.out_channels} channels)")
        if i == len(src) - 1:
            keep_out = None
        else:
            made = s.weight.detach().flatten(1).norm(dim=1) + s.bias.detach().abs()
            keep_out = _top(made * _reads(src[i + 1]), d.out_channels)
        _copy_layer(d, s, keep_in, keep_out)
        keep_in = keep_out if keep_out is not None else keep_in
    small.training_info = {"pruned_from": dict(decoder.config.__dict__)}
    return small.eval()
