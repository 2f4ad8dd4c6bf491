"""Function-preserving growth of a :class:`TransformerNet`: wider layers and more residual blocks that
start out computing exactly what the smaller network computes, so distillation can continue from a
student that has stopped improving instead of starting over (Net2Net, Chen et al. 2016, adapted to
conditional instance norm).

Every conv of the grown network starts as a freshly initialised one whose block for the old input and
output channels is overwritten with the old weights. A new channel computes something from the start
(fresh weights, gamma 1, beta 0), but every conv reads it with zero weights, so it changes nothing
downstream; those weights get a gradient at once (their input is not zero), so the channel is taken
up as training needs it. (Silencing the channel instead, with gamma and beta 0, would leave it dead:
ReLU passes no gradient at exactly 0.) A new residual block is an identity: its second norm, which no
ReLU follows, has gamma and beta 0, so the block adds nothing to the stream until trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from .transformer import ConditionalInstanceNorm2d, ConvNormReLU, TransformerNet

__all__ = ["grow_transformer"]


@torch.no_grad()
def _copy_into(dst: ConvNormReLU | nn.Conv2d, src: ConvNormReLU | nn.Conv2d) -> None:
    """Old weights into the leading block of ``dst``; its new input channels read with zero weights."""
    conv_d, conv_s = (dst.conv, src.conv) if isinstance(dst, ConvNormReLU) else (dst, src)
    cout, cin = conv_s.weight.shape[:2]
    conv_d.weight[:, cin:] = 0.0
    conv_d.weight[:cout, :cin] = conv_s.weight
    if conv_s.bias is not None:
        conv_d.bias[:cout] = conv_s.bias
    if isinstance(dst, ConvNormReLU):
        dst.norm.gamma[:, :cout] = src.norm.gamma
        dst.norm.beta[:, :cout] = src.norm.beta


@torch.no_grad()
def _silence(norm: ConditionalInstanceNorm2d) -> None:
    """Zero gamma and beta for every style: the norm outputs exactly 0."""
    norm.gamma.zero_()
    norm.beta.zero_()


@torch.no_grad()
def grow_transformer(net: TransformerNet, channels: Sequence[int], num_residual: int | None = None,
                     seed: int = 0) -> TransformerNet:
    """A copy of ``net`` with ``channels`` (full, 1/2, 1/4 resolution widths, each at least ``net``'s) and
    ``num_residual`` blocks (at least ``net``'s; the new ones come last) that computes the same outputs for
    every input and style. ``seed`` fixes the random weights of the new connections."""
    cfg = net.config
    if cfg.alpha != 1.0:
        raise ValueError("grow a network with alpha 1.0 (its widths are its channels)")
    widths = tuple(int(c) for c in channels)
    blocks = len(net.res) if num_residual is None else int(num_residual)
    if len(widths) != 3 or any(new < old for new, old in zip(widths, cfg.widths, strict=True)):
        raise ValueError(f"cannot grow widths {list(cfg.widths)} to {list(widths)}: each must be at least as wide")
    if blocks < len(net.res):
        raise ValueError(f"cannot grow {len(net.res)} residual blocks to {blocks}")
    net = net.float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        big = TransformerNet(replace(cfg, channels=widths, num_residual=blocks))
    _copy_into(big.stem, net.stem)
    _copy_into(big.down1, net.down1)
    _copy_into(big.down2, net.down2)
    for dst, src in zip(big.res, net.res, strict=False):
        _copy_into(dst.a, src.a)
        _copy_into(dst.b, src.b)
    for block in list(big.res)[len(net.res):]:
        _silence(block.b.norm)
    _copy_into(big.up1, net.up1)
    _copy_into(big.up2, net.up2)
    _copy_into(big.head, net.head)
    return big.train(net.training)
