"""VGG feature encoder: one forward pass returns every feature map the losses ask for."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from .weights import VGG_BLOCKS, WIDTHS, VGGWeights


def layer_names(arch: str = "vgg19") -> list[str]:
    """All named layers in order: conv1_1, relu1_1, ..., pool1, conv2_1, ..., pool5."""
    if arch not in VGG_BLOCKS:
        raise ValueError(f"unknown VGG architecture {arch!r}; use one of {', '.join(VGG_BLOCKS)}")
    names = []
    for b, n in enumerate(VGG_BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


class VGGEncoder(nn.Module):
    """VGG16/19 features up to the deepest requested layer, with its preprocessing bound in.

    Input: RGB images in [0, 1], shape (B, 3, H, W). Output: ``{layer_name: features}`` for
    the requested ``layers``. The weights are frozen; the network is truncated after the
    deepest requested layer so no work is wasted.

    Args:
        layers: names such as ``"relu1_1"`` or ``"conv4_2"`` to return.
        weights: a :class:`VGGWeights` (default: the bundled Caffe VGG19 weights), or ``None``
            for random initialisation (tests, architecture checks).
        pooling: ``"max"`` (the original) or ``"avg"`` (Gatys et al. found it smoother).
        arch: ``"vgg19"`` or ``"vgg16"``.
    """

    def __init__(
        self,
        layers: Iterable[str],
        weights: VGGWeights | None = VGGWeights(),
        pooling: str = "max",
        arch: str | None = None,
    ) -> None:
        super().__init__()
        if weights is not None and arch is not None and arch != weights.arch:
            raise ValueError(f"arch={arch!r} does not match the weights' architecture {weights.arch!r}")
        arch = arch or (weights.arch if weights else "vgg19")
        all_names = layer_names(arch)
        self.layers = list(dict.fromkeys(layers))
        unknown = [n for n in self.layers if n not in all_names]
        if unknown:
            raise ValueError(f"unknown {arch} layer(s) {unknown}; valid: {', '.join(all_names)}")
        if not self.layers:
            raise ValueError("at least one layer is required")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.arch = arch
        self.pooling = pooling
        last = max(all_names.index(n) for n in self.layers)
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for name in all_names[: last + 1]:
            if name.startswith("conv"):
                width = WIDTHS[int(name[4:].split("_")[0])]
                modules[name] = nn.Conv2d(channels, width, 3, padding=1)
                channels = width
            elif name.startswith("relu"):
                modules[name] = nn.ReLU(inplace=False)
            else:
                modules[name] = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
        self.body = nn.Sequential(modules)
        self._built = frozenset(modules)
        self.preprocessing = weights.preprocessing if weights else None
        if weights is not None:
            state = weights.state_dict()
            # assign=True: the parameters share the process-wide cached tensors (no copy per encoder).
            self.body.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in modules}, assign=True)
        self.requires_grad_(False)
        self.eval()

    @property
    def layers_built(self) -> list[str]:
        """Names of the layers this (truncated) network computes, in order."""
        return [name for name, _ in self.body.named_children()]

    @property
    def out_channels(self) -> dict[str, int]:
        ch, out = 3, {}
        for name, mod in self.body.named_children():
            if isinstance(mod, nn.Conv2d):
                ch = mod.out_channels
            out[name] = ch
        return {n: out[n] for n in self.layers}

    def train(self, mode: bool = True) -> VGGEncoder:
        return super().train(False)  # always frozen, always eval

    def channels_last(self, enabled: bool = True) -> VGGEncoder:
        """Run convolutions in channels-last layout (faster with oneDNN/AMX and on GPUs)."""
        fmt = torch.channels_last if enabled else torch.contiguous_format
        self.to(memory_format=fmt)
        self._channels_last = enabled
        return self

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return self.preprocessing.apply(x) if self.preprocessing else x

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(layers) if layers is not None else set(self.layers)
        if not wanted <= self._built:
            missing = sorted(wanted - self._built)
            raise ValueError(f"layer(s) {missing} not computed by this encoder "
                             f"(it stops after {self.layers_built[-1]})")
        feats: dict[str, torch.Tensor] = {}
        h = self.preprocess(x)
        if getattr(self, "_channels_last", False):
            h = h.contiguous(memory_format=torch.channels_last)
        for name, mod in self.body.named_children():
            h = mod(h)
            if name in wanted:
                feats[name] = h
                if len(feats) == len(wanted):
                    break
        return feats
