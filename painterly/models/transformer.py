"""Johnson-style image transformer network with conditional instance normalization.

Architecture (Johnson et al. 2016, with the changes of Dumoulin et al. 2017): reflection
padding everywhere, 9x9 stem conv, two stride-2 3x3 convs, residual blocks, two stages of
nearest-neighbour (or bilinear) upsampling + 3x3 conv (no transposed convs, so no checkerboards), 9x9 output
conv and a sigmoid or a clamp (see ``TransformerConfig.output``), so outputs are RGB in [0, 1].
Every conv but the last is followed by (conditional) instance normalization and ReLU.

Conditional instance norm (CIN) keeps one (gamma, beta) pair per style per layer; a style
vector of N weights (one-hot for a single style, any convex weights to mix styles) selects the
convex combination of the pairs. With ``num_styles=1`` it is plain instance norm with an affine.

The forward pass has no Python control flow on tensor values, so it exports to ONNX. For
tiled inference of large images the instance-norm statistics can be collected once (on the
whole image or a downscaled proxy) and then frozen while tiles run (see :class:`NormStats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

UPSAMPLE_MODES = ("nearest", "bilinear")


@dataclass
class TransformerConfig:
    """Shape of a :class:`TransformerNet`.

    ``channels`` are the widths at full, 1/2 and 1/4 resolution before the width multiplier
    ``alpha`` is applied (each rounded, at least 4).
    """

    channels: tuple[int, int, int] = (32, 64, 128)
    num_residual: int = 5
    num_styles: int = 1
    alpha: float = 1.0
    stem_kernel: int = 9
    eps: float = 1e-5
    #: "sigmoid": outputs squashed into (0, 1). "clamp": ``0.5 + conv`` trained unbounded (no saturated,
    #: gradient-free regions, hence no dead dark blobs) and clamped to [0, 1] in eval mode.
    output: str = "sigmoid"
    #: 2x upsampling before the two up-convs: "nearest" (Johnson et al.) or "bilinear" (smoother: a
    #: small network's nearest-neighbour blocks can show through as a 4-pixel lattice)
    upsample: str = "nearest"

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)  # type: ignore[assignment]
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ValueError(f"channels must be three positive widths, got {self.channels}")
        if self.num_residual < 0 or self.num_styles < 1 or self.alpha <= 0:
            raise ValueError("num_residual >= 0, num_styles >= 1 and alpha > 0 are required")
        if self.stem_kernel % 2 != 1:
            raise ValueError("stem_kernel must be odd")
        if self.output not in ("sigmoid", "clamp"):
            raise ValueError(f"output must be 'sigmoid' or 'clamp', got {self.output!r}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {self.upsample!r}")

    @property
    def widths(self) -> tuple[int, int, int]:
        return tuple(max(4, round(c * self.alpha)) for c in self.channels)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TransformerConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "channels" in known:
            known["channels"] = tuple(known["channels"])
        return cls(**known)

    @classmethod
    def preset(cls, name: str, num_styles: int = 1) -> TransformerConfig:
        """``"full"`` (32/64/128, 5 blocks), ``"medium"`` (x0.5 widths, 5 blocks) or ``"slim"``."""
        presets = {
            "full": dict(channels=(32, 64, 128), num_residual=5, alpha=1.0),
            "medium": dict(channels=(32, 64, 128), num_residual=5, alpha=0.5),
            "slim": dict(channels=(32, 32, 32), num_residual=3, alpha=0.5),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
        return cls(num_styles=num_styles, **presets[name])


@dataclass
class NormStats:
    """Instance-norm statistics of one forward pass, to reuse on tiles of the same image.

    ``mode="collect"`` records each CIN layer's (mean, var); ``mode="apply"`` replays them in
    order instead of computing per-input statistics.
    """

    mode: str = "collect"
    stats: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    index: int = 0

    def replay(self) -> NormStats:
        return NormStats("apply", self.stats, 0)


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose affine (gamma, beta) is a weighted mix of per-style rows."""

    def __init__(self, num_features: int, num_styles: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.gamma = nn.Parameter(torch.ones(num_styles, num_features))
        self.beta = nn.Parameter(torch.zeros(num_styles, num_features))

    @property
    def num_styles(self) -> int:
        return self.gamma.shape[0]

    def forward(self, x: torch.Tensor, style: torch.Tensor, norm: NormStats | None = None) -> torch.Tensor:
        """``x`` (B, C, H, W); ``style`` (B, N) weights. Statistics are accumulated in fp32."""
        style = style.to(self.gamma.dtype)
        gamma, beta = style @ self.gamma, style @ self.beta  # (B, C)
        if norm is None:
            with torch.autocast(x.device.type, enabled=False):
                if torch.is_grad_enabled() and (x.requires_grad or gamma.requires_grad):
                    return instance_norm_affine(x, gamma.float(), beta.float(), self.eps)
                # inference: group_norm with one channel per group is instance norm, and with a
                # single image the affine folds into its fused kernel (not when exporting: the
                # exported graph must take any batch size)
                if x.shape[0] == 1 and not _exporting():
                    return F.group_norm(x, self.num_features, gamma.view(-1).to(x.dtype), beta.view(-1).to(x.dtype),
                                        self.eps)
                y = F.group_norm(x, self.num_features, eps=self.eps)
                return torch.addcmul(beta[:, :, None, None].to(y.dtype), y, gamma[:, :, None, None].to(y.dtype))
        if norm.mode == "apply":
            mean, var = norm.stats[norm.index]
            norm.index += 1
        else:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
            norm.stats.append((mean, var))
        scale = gamma.float()[:, :, None, None] * torch.rsqrt(var + self.eps)
        shift = beta.float()[:, :, None, None] - mean * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_styles={self.num_styles}"


class _InstanceNormAffine(torch.autograd.Function):
    """Instance norm with a per-sample affine, ``gamma * (x - mean) / std + beta``, for training.

    Works in the input's dtype and memory layout (bf16 channels_last on AMX CPUs; statistics
    accumulated in fp32 by the group-norm kernel) with a hand-written backward of a few fused
    passes: on CPU, autograd's group_norm + addcmul chain (with layout round trips around
    group_norm's slow channels_last backward) cost more than the transformer's convolutions.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
        b, c, h, w = x.shape
        if x.device.type != "cpu":  # the CUDA group-norm kernel takes contiguous (NCHW) input only
            x = x.contiguous()
        xhat, _, rstd = torch.native_group_norm(x, None, None, b, c, h * w, c, eps)
        ctx.save_for_backward(xhat, gamma, rstd)
        return torch.addcmul(beta[:, :, None, None].to(x.dtype), xhat, gamma[:, :, None, None].to(x.dtype))

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        xhat, gamma, rstd = ctx.saved_tensors
        n = xhat.shape[2] * xhat.shape[3]
        dbeta = dy.sum((2, 3)).to(gamma.dtype)  # reductions accumulate in fp32
        dgamma = (dy * xhat).sum((2, 3)).to(gamma.dtype)
        dx = None
        if ctx.needs_input_grad[0]:
            # dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)) = a * dy + b * xhat + c
            a = gamma * rstd.view_as(gamma).to(gamma.dtype)
            dx = torch.addcmul((-a * dbeta / n)[:, :, None, None].to(dy.dtype), xhat,
                               (-a * dgamma / n)[:, :, None, None].to(dy.dtype))
            dx = torch.addcmul(dx, dy, a[:, :, None, None].to(dy.dtype))
        return dx, dgamma, dbeta, None


def instance_norm_affine(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``x`` (B, C, H, W) normalised per sample and channel, then scaled by ``gamma`` and shifted by
    ``beta`` (both (B, C), fp32); differentiable in all three. See :class:`_InstanceNormAffine`."""
    return _InstanceNormAffine.apply(x, gamma, beta, eps)


#: Per output phase p (rows or columns) of a nearest-2x-upsampled, reflection-padded 3x3 conv: which of the
#: three original taps (columns) each tap of the equivalent 3x3 conv on the edge-padded low-resolution
#: input (rows) sums. See :func:`subpixel_weights`.
SUBPIXEL_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
                              [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def subpixel_weights(weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A 3x3 conv that follows nearest 2x upsampling and reflection padding by 1, rewritten to run at the
    low resolution: ``conv(reflect_pad(up2(x), 1), weight)`` equals ``pixel_shuffle(conv(edge_pad(x, 1), w'),
    2)`` with the returned (4*O, C, 3, 3) ``w'``.

    Row 2i+p of the padded upsampled input is row i + floor((p + a) / 2) of the edge-padded input for tap
    a in {-1, 0, 1} (reflecting the upsampled image at its border repeats the edge pixel), so each output
    phase p sees two low-resolution rows, and their weights are sums of the original taps
    (:data:`SUBPIXEL_TAPS`). The same multiply-adds, without the 4x larger upsampled tensor, its padding,
    or the resize."""
    if weight.shape[-2:] != (3, 3):
        raise ValueError("subpixel_weights takes a 3x3 conv")
    t = SUBPIXEL_TAPS.to(weight.dtype)
    w = torch.einsum("pia,ocab,qjb->opqcij", t, weight, t)  # (O, p, q, C, 3, 3)
    out_ch, in_ch = weight.shape[:2]
    return w.reshape(out_ch * 4, in_ch, 3, 3), None if bias is None else bias.repeat_interleave(4)


def subpixel_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv(reflect_pad(upsample_nearest_2x(x), 1), weight, bias)`` for a 3x3 ``weight``, computed as a
    sub-pixel conv at the low resolution (:func:`subpixel_weights`): the same numbers, 5-15% faster on CPU."""
    with torch.autocast(x.device.type, enabled=False):  # the tap sums in the weights' precision, the pad in
        w, b = subpixel_weights(weight, bias)  # the input's dtype (as reflect_pad)
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.pixel_shuffle(F.conv2d(x, w, b), 2)


class ConvNormReLU(nn.Module):
    """Reflection-padded conv -> CIN -> ReLU (optionally preceded by 2x upsampling, ``upsample`` being
    its mode: "nearest" or "bilinear")."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, num_styles: int, eps: float,
                 upsample: str | None = None, relu: bool = True) -> None:
        super().__init__()
        self.upsample, self.relu = upsample, relu
        self.pad = kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = ConditionalInstanceNorm2d(cout, num_styles, eps)

    def forward(self, x: torch.Tensor, style: torch.Tensor, norm: NormStats | None = None) -> torch.Tensor:
        if self.upsample == "nearest" and not torch.is_grad_enabled() and self.conv.kernel_size == (3, 3):
            # inference: the same numbers as a sub-pixel conv at the low resolution (5-10% faster on CPU;
            # training keeps the plain form, whose backward is the well-trodden one)
            x = subpixel_conv(x, self.conv.weight, self.conv.bias)
        else:
            if self.upsample == "nearest":
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            elif self.upsample:
                x = F.interpolate(x, scale_factor=2.0, mode=self.upsample, align_corners=False)
            x = self.conv(reflect_pad(x, self.pad))
        x = self.norm(x, style, norm)
        return F.relu(x, inplace=True) if self.relu else x


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, num_styles: int, eps: float) -> None:
        super().__init__()
        self.a = ConvNormReLU(channels, channels, 3, 1, num_styles, eps)
        self.b = ConvNormReLU(channels, channels, 3, 1, num_styles, eps, relu=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, norm: NormStats | None = None) -> torch.Tensor:
        return x + self.b(self.a(x, style, norm), style, norm)


def unshuffle_taps(kernel: int, block: int) -> torch.Tensor:
    """(b, K, b) index of the old kernel tap that each (output phase p, new tap s, input phase r) reads,
    K = ceil((kernel-1)/b)+1; ``kernel`` where it falls outside the kernel (a zero row). See
    :func:`unshuffled_weights`."""
    taps = (kernel - 2 + block) // block + 1
    p, s, r = torch.meshgrid(torch.arange(block), torch.arange(taps), torch.arange(block), indexing="ij")
    u = block * s + r - p
    return torch.where((u >= 0) & (u < kernel), u, kernel)


def unshuffled_weights(weight: torch.Tensor, bias: torch.Tensor | None, block: int,
                       index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weights of a (O, C, k, k) conv rewritten for its input's ``pixel_unshuffle(x, block)``: a
    (O*b*b, C*b*b, K, K) conv whose ``pixel_shuffle(., block)`` is the original conv's output.

    Output pixel (b*i + p, b*j + q) of the original reads input rows b*i + p + u, u < k; with
    p + u = b*s + r that is row (s, r) of the unshuffled input, so the new tap (s, r) for output phase p is
    the old tap u = b*s + r - p (zero where u falls outside the kernel). ``index``: :func:`unshuffle_taps`.
    """
    out_ch, in_ch, k, _ = weight.shape
    u = unshuffle_taps(k, block) if index is None else index
    padded = F.pad(weight, (0, 1, 0, 1))  # (O, C, k+1, k+1): index k reads zeros
    w = padded[:, :, u][..., u]  # (O, C, p, s, r, q, s', r')
    w = w.permute(0, 2, 5, 1, 4, 7, 3, 6)  # (O, p, q, C, r, r', s, s')
    taps = u.shape[1]
    w = w.reshape(out_ch * block * block, in_ch * block * block, taps, taps)
    return w, None if bias is None else bias.repeat_interleave(block * block)


def head_conv(head: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The 9x9 RGB output conv ``head`` on the padded ``x``. In fp32 CPU inference it runs unshuffled (block 2:
    pixel_unshuffle, a conv with 4x the output channels, pixel_shuffle; :func:`unshuffled_weights`), the same
    numbers: oneDNN's fp32 kernels waste most of their vector width on 3 output channels (the slim student's
    at 1024 px: 139 -> 98 ms on AVX-512). bf16 (AMX) and training keep the plain conv, faster there."""
    h, w = x.shape[-2:]
    if (torch.is_grad_enabled() or x.dtype != torch.float32 or x.device.type != "cpu" or h % 2 or w % 2
            or head.kernel_size[0] < 5 or torch.is_autocast_enabled("cpu")):
        return head(x)
    wt, b = unshuffled_weights(head.weight, head.bias, 2)
    return F.pixel_shuffle(F.conv2d(F.pixel_unshuffle(x, 2), wt, b), 2)


class TransformerNet(nn.Module):
    """Feed-forward stylization network; see the module docstring.

    ``forward(x, style=None, norm=None)``: ``x`` (B, 3, H, W) RGB in [0, 1] with H and W
    multiples of 4; ``style`` (B, N) or (N,) style weights (default: style 0, or the single
    style). Returns (B, 3, H, W) in [0, 1] (with ``output="clamp"``, unclamped in training mode).
    """

    def __init__(self, config: TransformerConfig | None = None) -> None:
        super().__init__()
        self.config = config = replace(config) if config is not None else TransformerConfig()
        c1, c2, c3 = config.widths
        n, eps, k = config.num_styles, config.eps, config.stem_kernel
        self.stem = ConvNormReLU(3, c1, k, 1, n, eps)
        self.down1 = ConvNormReLU(c1, c2, 3, 2, n, eps)
        self.down2 = ConvNormReLU(c2, c3, 3, 2, n, eps)
        self.res = nn.ModuleList(ResidualBlock(c3, n, eps) for _ in range(config.num_residual))
        self.up1 = ConvNormReLU(c3, c2, 3, 1, n, eps, upsample=config.upsample)
        self.up2 = ConvNormReLU(c2, c1, 3, 1, n, eps, upsample=config.upsample)
        self.head = nn.Conv2d(c1, 3, k, 1)

    @property
    def num_styles(self) -> int:
        return self.config.num_styles

    def norms(self) -> list[ConditionalInstanceNorm2d]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm2d)]

    def style_vector(self, index: int, batch: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
        """One-hot (batch, N) weights selecting style ``index``."""
        v = torch.zeros(batch, self.num_styles, device=device or self.head.weight.device)
        v[:, index] = 1.0
        return v

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None,
                norm: NormStats | None = None) -> torch.Tensor:
        if style is None:
            style = self.style_vector(0, x.shape[0], x.device)
        elif style.dim() == 1:
            style = style.unsqueeze(0).expand(x.shape[0], -1)
        h = self.stem(x, style, norm)
        h = self.down1(h, style, norm)
        h = self.down2(h, style, norm)
        for block in self.res:
            h = block(h, style, norm)
        h = self.up1(h, style, norm)
        h = self.up2(h, style, norm)
        y = head_conv(self.head, reflect_pad(h, self.config.stem_kernel // 2))
        if self.config.output == "sigmoid":
            return torch.sigmoid(y)
        y = y + 0.5
        return y if self.training else y.clamp(0.0, 1.0)

    @torch.no_grad()
    def add_styles(self, count: int, init: str = "mean") -> None:
        """Append ``count`` style rows to every CIN layer (``init``: "mean" of existing rows or "identity")."""
        if count < 1:
            raise ValueError("count must be >= 1")
        for m in self.norms():
            if init == "mean":
                g = m.gamma.mean(0, keepdim=True).expand(count, -1)
                b = m.beta.mean(0, keepdim=True).expand(count, -1)
            else:
                g, b = torch.ones_like(m.gamma[:1]).expand(count, -1), torch.zeros_like(m.beta[:1]).expand(count, -1)
            m.gamma = nn.Parameter(torch.cat([m.gamma.data, g]).contiguous())
            m.beta = nn.Parameter(torch.cat([m.beta.data, b]).contiguous())
        self.config = replace(self.config, num_styles=self.config.num_styles + count)

    @torch.no_grad()
    def select_styles(self, indices: Sequence[int]) -> None:
        """Keep only the style rows ``indices`` (in that order) in every CIN layer."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.num_styles:
            raise ValueError(f"style indices must be in [0, {self.num_styles}), got {list(indices)}")
        for m in self.norms():
            m.gamma = nn.Parameter(m.gamma.data[idx.to(m.gamma.device)].clone(), requires_grad=m.gamma.requires_grad)
            m.beta = nn.Parameter(m.beta.data[idx.to(m.beta.device)].clone(), requires_grad=m.beta.requires_grad)
        self.config = replace(self.config, num_styles=int(idx.numel()))

    def style_parameters(self) -> list[nn.Parameter]:
        """Every CIN gamma and beta (the parameters trained when adding a style)."""
        return [p for m in self.norms() for p in (m.gamma, m.beta)]


def _exporting() -> bool:
    """True while torch.export / ONNX export traces the network."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()


def reflect_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Reflection padding by ``p`` on all four sides, in the input's dtype and memory layout.

    Autocast would run ``reflection_pad2d`` in fp32 (two extra full-size copies per layer at
    bf16), so it is disabled around the pad.
    """
    if p == 0:
        return x
    with torch.autocast(x.device.type, enabled=False):
        return F.pad(x, (p, p, p, p), mode="reflect")


def pad_to_multiple(x: torch.Tensor, multiple: int = 4) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflection-pad bottom/right so H and W are multiples of ``multiple``; returns the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)
