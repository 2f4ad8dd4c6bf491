"""Meta Networks for arbitrary style transfer (Shen, Yan & Zeng, "Neural Style Transfer via Meta
Networks", CVPR 2018).

A meta network maps a painting to the **weights of a compact transformer network**: the
painting's VGG feature statistics (channel mean and std at relu1_1..relu4_1, log-compressed,
standardized with the training styles' mean/std) go through a shared hidden layer, which is
split into one group per transformer layer; each group's fully connected head emits that
layer's parameters (conv weights and bias, instance-norm gamma/beta). One meta forward per
style; the generated :class:`TransformerNet` then stylizes any number of images at
feed-forward speed, and it is a normal single-style model: save it with
:func:`save_generated` and use it with ``painterly stylize --model``.

Each head's bias is initialised to the flattened default initialisation of the transformer and
its weights small, so training starts from an ordinary (style-independent) network and learns
style-dependent offsets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ..encoders import VGGEncoder, VGGWeights
from ..imageio import MIN_SIDE, ImageLike, load_image, to_tensor
from ..losses import calc_mean_std
from ..styles import StyleInfo
from .io import StylizationModel, save_model
from .tensorfile import load_module, pretrained_path, save_tensors
from .transformer import TransformerConfig, TransformerNet

META_FORMAT = "painterly.meta.v1"
#: File name of the shipped meta network in ``painterly/pretrained/``.
META_FILE = "meta.safetensors"
STAT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
_VGG_WIDTH = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


@dataclass
class MetaConfig:
    """Shape of a :class:`MetaNetwork`.

    ``transformer`` is the generated network's configuration (default: the slim preset, one
    style, clamped output: see :func:`with_clamp_output`); ``group_hidden`` the hidden units
    per generated layer group (Shen et al. use 128 for 14 groups); ``init_scale`` the initial
    size of the style-dependent offsets relative to each layer's parameter RMS.
    """

    transformer: dict[str, Any] = field(
        default_factory=lambda: replace(TransformerConfig.preset("slim"), output="clamp").to_dict())
    stat_layers: tuple[str, ...] = STAT_LAYERS
    group_hidden: int = 64
    init_scale: float = 0.1

    def __post_init__(self) -> None:
        self.stat_layers = tuple(self.stat_layers)
        if self.transformer_config().num_styles != 1:
            raise ValueError("the generated transformer has exactly one style")
        if self.group_hidden < 1:
            raise ValueError("group_hidden must be positive")

    def transformer_config(self) -> TransformerConfig:
        return TransformerConfig.from_dict(self.transformer)

    @property
    def stats_dim(self) -> int:
        return 2 * sum(_VGG_WIDTH[int(n[4])] for n in self.stat_layers)

    def to_dict(self) -> dict[str, Any]:
        return {"transformer": dict(self.transformer), "stat_layers": list(self.stat_layers),
                "group_hidden": self.group_hidden, "init_scale": self.init_scale}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetaConfig:
        known = {k: d[k] for k in ("transformer", "stat_layers", "group_hidden", "init_scale") if k in d}
        return cls(**known)


def style_statistics(feats: Mapping[str, torch.Tensor], layers: Sequence[str]) -> torch.Tensor:
    """(B, D) meta-network input: ``log1p`` of channel means and stds of each layer, concatenated.

    The log compresses raw VGG activations, whose scale differs by orders of magnitude between
    layers, into a range a linear layer handles well.
    """
    parts = []
    for name in layers:
        mean, std = calc_mean_std(feats[name])
        parts += [mean.flatten(1), std.flatten(1)]
    return torch.log1p(torch.cat(parts, dim=1).clamp_min(0.0))


def _group_of(param_name: str) -> str:
    """``res.0.a.conv.weight`` -> ``res.0.a``; ``head.weight`` -> ``head``."""
    parts = param_name.split(".")[:-1]
    if parts and parts[-1] in ("conv", "norm"):
        parts = parts[:-1]
    return ".".join(parts)


class MetaNetwork(nn.Module):
    """Style statistics (B, D) -> parameters of one :class:`TransformerNet` per style.

    ``forward(stats)`` returns ``{param_name: (B, *shape)}``; :meth:`run` applies the generated
    parameters of style ``i`` to images, :meth:`transformer` materialises a standalone network.
    """

    def __init__(self, config: MetaConfig | None = None) -> None:
        super().__init__()
        self.config = config or MetaConfig()
        self.training_info: dict[str, Any] = {}  # facts about how it was trained (from its file)
        template = TransformerNet(self.config.transformer_config())
        template.requires_grad_(False)
        object.__setattr__(self, "_template", template)  # not a submodule: never saved, never trained
        groups: dict[str, list[tuple[str, torch.Size]]] = {}
        for name, p in template.named_parameters():
            groups.setdefault(_group_of(name), []).append((name, p.shape))
        self.groups = [(g, entries) for g, entries in groups.items()]
        gh = self.config.group_hidden
        # input standardization (per statistic, fitted on the training styles before training; saved with the model)
        self.register_buffer("stats_mean", torch.zeros(self.config.stats_dim))
        self.register_buffer("stats_std", torch.ones(self.config.stats_dim))
        self.trunk = nn.Sequential(nn.Linear(self.config.stats_dim, gh * len(self.groups)), nn.ReLU())
        self.heads = nn.ModuleList()
        params = dict(template.named_parameters())
        for _, entries in self.groups:
            init = torch.cat([params[n].detach().flatten() for n, _ in entries])
            head = nn.Linear(gh, init.numel())
            with torch.no_grad():
                head.bias.copy_(init)
                rms = float(init.pow(2).mean().sqrt()) or 1.0
                # trunk outputs are O(1) after the ReLU (about half are zero): std of W h ~ init_scale * rms
                head.weight.normal_(0.0, self.config.init_scale * rms / (0.5 * gh) ** 0.5)
            self.heads.append(head)

    @property
    def template(self) -> TransformerNet:
        return self._template  # type: ignore[attr-defined]

    def train(self, mode: bool = True) -> MetaNetwork:
        """Also switch the generated networks' mode (a ``"clamp"`` output is clamped only in eval mode)."""
        super().train(mode)
        self.template.train(mode)
        return self

    def forward(self, stats: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(stats.device.type, enabled=False):  # generated weights in fp32, also under autocast
            h = self.trunk((stats.float() - self.stats_mean) / self.stats_std)
            flats = [head(chunk) for head, chunk in zip(self.heads, h.split(self.config.group_hidden, dim=1),
                                                        strict=True)]
        out: dict[str, torch.Tensor] = {}
        for (_, entries), flat in zip(self.groups, flats, strict=True):
            offset = 0
            for name, shape in entries:
                n = shape.numel()
                out[name] = flat[:, offset : offset + n].reshape(-1, *shape)
                offset += n
        return out

    @torch.no_grad()
    def fit_input_normalization(self, stats: torch.Tensor, min_std: float = 0.05) -> None:
        """Standardize the inputs with the mean/std of ``stats`` (N, D) of many training styles.

        Raw statistics of different paintings share a large common part; standardized, the
        differences between styles drive the hidden layer from the first step.
        """
        self.stats_mean.copy_(stats.float().mean(0))
        self.stats_std.copy_(stats.float().std(0).clamp_min(min_std))

    def run(self, params: Mapping[str, torch.Tensor], index: int, x: torch.Tensor) -> torch.Tensor:
        """Stylize ``x`` with the generated parameters of style ``index`` (differentiable)."""
        return functional_call(self.template, {k: v[index] for k, v in params.items()}, (x,))

    @torch.no_grad()
    def transformer(self, params: Mapping[str, torch.Tensor], index: int = 0) -> TransformerNet:
        """A standalone single-style :class:`TransformerNet` holding style ``index``'s parameters."""
        net = TransformerNet(self.config.transformer_config())
        net.load_state_dict({k: v[index].detach().float().cpu() for k, v in params.items()})
        return net.requires_grad_(False).eval()

    def stats_encoder(self, weights: VGGWeights | None = VGGWeights()) -> VGGEncoder:
        """The frozen VGG that computes this network's input statistics."""
        return VGGEncoder(self.config.stat_layers, weights=weights)

    @torch.no_grad()
    def generate(self, style: torch.Tensor, encoder: VGGEncoder) -> TransformerNet:
        """Transformer for one style image (1, 3, H, W) in [0, 1]."""
        feats = encoder(style.to(next(self.parameters()).device), list(self.config.stat_layers))
        return self.transformer(self(style_statistics(feats, self.config.stat_layers)))


def with_clamp_output(meta: MetaNetwork) -> MetaNetwork:
    """A copy of ``meta`` whose generated networks end in ``0.5 + conv`` (``TransformerConfig.output =
    "clamp"``: unbounded in training, clamped to [0, 1] in eval mode) instead of a sigmoid.

    With a sigmoid, pixels can saturate into blobs that no gradient reaches any more (the meta
    network shipped until stop 8 painted white blobs on *Udnie*: 6% of the pixels at a
    pre-activation above 4, up to 45); unbounded, the loss pulls them back. The output layer is
    scaled by 1/4, the sigmoid's slope at 0, so unsaturated pixels change little at first.
    """
    if meta.config.transformer_config().output == "clamp":
        return meta
    out = _with_transformer(meta, output="clamp")
    head = out.heads[[g for g, _ in out.groups].index("head")]
    with torch.no_grad():
        head.weight.mul_(0.25)
        head.bias.mul_(0.25)
    return out


def with_upsample(meta: MetaNetwork, mode: str) -> MetaNetwork:
    """A copy of ``meta`` whose generated networks upsample with ``mode`` ("nearest" or "bilinear"),
    the same weights otherwise. Bilinear removes the 4-pixel lattice that the nearest-neighbour blocks
    of a small generated network leave; continue training after switching, as the weights were
    learned for the other mode."""
    if meta.config.transformer_config().upsample == mode:
        return meta
    return _with_transformer(meta, upsample=mode)


def widen(meta: MetaNetwork, factor: int = 2, noise: float = 0.01, seed: int = 0) -> MetaNetwork:
    """A copy of ``meta`` whose generated networks are ``factor`` times wider, computing the same
    function (Net2WiderNet, Chen et al. 2016), to continue training with more capacity.

    Every channel of the generated transformer is copied ``factor`` times (conv rows, biases, norm
    gamma/beta) and each conv's input weights are divided by ``factor``, so the duplicates add up to
    the original. Instance norm, ReLU and the residual sums treat the copies alike, so the output
    is unchanged. This is a linear map of each layer's parameters, applied to the heads' weights
    and biases alike: it holds for every style. Copies stay identical under training unless made
    different, so ``noise`` (relative to each conv weight's RMS) is added to the shared base; it
    changes the outputs slightly (0 keeps them exact).
    """
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    if factor == 1:
        return meta
    old_tc = meta.config.transformer_config()
    tc = replace(old_tc, channels=tuple(w * factor for w in old_tc.widths), alpha=1.0)
    config = replace(meta.config, transformer=tc.to_dict())
    out = MetaNetwork(config)
    old_shapes = {n: p.shape for n, p in meta.template.named_parameters()}
    gen = torch.Generator().manual_seed(seed)
    state = {k: v for k, v in meta.state_dict().items() if not k.startswith("heads.")}
    for i, ((_, entries), old_head) in enumerate(zip(out.groups, meta.heads, strict=True)):
        w, b = old_head.weight.detach().cpu().float(), old_head.bias.detach().cpu().float()
        index, scale, jitter, offset, old_offsets = [], [], [], 0, {}
        for name, old in meta.groups[i][1]:  # same groups and names, narrower shapes
            old_offsets[name] = offset
            offset += old.numel()
        for name, shape in entries:
            old = old_shapes[name]
            idx = torch.arange(old.numel()).reshape(old)
            for d, (n_new, n_old) in enumerate(zip(shape, old, strict=True)):
                idx = idx.index_select(d, torch.arange(n_new) % n_old)
            idx = idx.flatten() + old_offsets[name]
            s = torch.ones(shape.numel())
            if len(shape) == 4 and shape[1] != old[1]:
                s /= shape[1] // old[1]  # the copies of an input channel share its weight
            # noise on conv weights only, relative to the RMS of the parameter's new base
            amp = float(noise) * float((b[idx] * s).pow(2).mean().sqrt()) if len(shape) == 4 else 0.0
            index.append(idx)
            scale.append(s)
            jitter.append(torch.full((shape.numel(),), amp))
        index_t, scale_t = torch.cat(index), torch.cat(scale)
        bias = b[index_t] * scale_t
        state[f"heads.{i}.weight"] = w[index_t] * scale_t[:, None]
        state[f"heads.{i}.bias"] = bias + torch.cat(jitter) * torch.randn(bias.shape, generator=gen)
    out.load_state_dict(state)
    out.training_info = dict(meta.training_info)
    return out.train(meta.training).to(next(meta.parameters()).device)


def _with_transformer(meta: MetaNetwork, **changes: Any) -> MetaNetwork:
    """A copy of ``meta`` (same weights, mode, device and training record) whose generated networks
    have ``changes`` in their :class:`TransformerConfig` (validated)."""
    config = replace(meta.config, transformer={**meta.config.transformer, **changes})
    config.transformer_config()
    out = MetaNetwork(config)
    out.load_state_dict(meta.state_dict())
    out.training_info = dict(meta.training_info)
    return out.train(meta.training).to(next(meta.parameters()).device)


def save_meta(meta: MetaNetwork, path: str | os.PathLike, training: Mapping[str, Any] | None = None,
              half: bool = False) -> Path:
    """Write a meta network atomically as safetensors with JSON metadata ``{format, config, training}``."""
    header = {"format": META_FORMAT, "config": meta.config.to_dict(), "training": dict(training or {})}
    return save_tensors(meta.state_dict(), header, path, half)


def load_meta(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> MetaNetwork:
    """Read a meta network (default: the shipped one); bad files -> :class:`ModelError`."""
    path = Path(path) if path is not None else pretrained_path(META_FILE)
    meta, header = load_module(path, META_FORMAT, "meta network",
                               lambda h: MetaNetwork(MetaConfig.from_dict(h["config"])))
    meta.training_info = dict(header.get("training") or {})
    return meta.to(device)


def generate(style_image: ImageLike, meta: MetaNetwork | str | os.PathLike | None = None, style_size: int = 512,
             encoder: VGGEncoder | None = None) -> TransformerNet:
    """A ready single-style transformer for ``style_image`` (path, PIL image, array or tensor).

    ``meta``: a :class:`MetaNetwork`, a file, or ``None`` for the shipped one. The style is
    resized so its longest side is ``style_size`` before its statistics are taken.
    """
    if not isinstance(meta, MetaNetwork):
        meta = load_meta(meta)
    encoder = encoder if encoder is not None else meta.stats_encoder()
    style = to_tensor(load_image(style_image, size=style_size, min_side=MIN_SIDE))
    return meta.generate(style, encoder)


def save_generated(net: TransformerNet, path: str | os.PathLike, name: str, title: str = "", artist: str = "",
                   source: str = "", half: bool = False) -> Path:
    """Save a generated transformer as an ordinary single-style model (``painterly stylize --model``)."""
    info = StyleInfo(name, title or name.replace("-", " ").title(), artist, source)
    model = StylizationModel(net, [info], {"generated_by": "meta-network", "source": source})
    return save_model(model, path, half=half)
