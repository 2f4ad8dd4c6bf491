"""The torch engine: autocast by measured speed (bf16 on AMX CPUs and CUDA), channels-last.

Stylization (:class:`TorchStylizer`, :func:`run_network`) and arbitrary style transfer
(:func:`run_transfer`: AdaIN and the meta network) on PyTorch. Tiling geometry is shared with the
onnxruntime engine (:mod:`painterly.engines.tiling`).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import PainterlyError
from ..imageio import to_tensor
from ..malloc import keep_freed_memory
from ..models.adain import AdaIN, Stats, load_decoder
from ..models.io import StylizationModel, load_model
from ..models.meta import MetaNetwork, load_meta, style_statistics
from ..models.transformer import NormStats, TransformerNet, pad_to_multiple
from ..runtime import autocast, resolve_device, resolve_precision
from ..styles import StyleSpec, style_weights
from .tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_STATS_SIZE,
    DEFAULT_TILE,
    axis_tiles,
    axis_weights,
    proxy_size,
    tile_geometry,
)

# --------------------------------------------------------------------------------------------
# Stylization
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> StylizationModel:
    return load_model(path)


def load_stylization_model(path: str | os.PathLike) -> StylizationModel:
    """A cached :class:`StylizationModel` from ``path`` (reloaded when the file changes)."""
    p = Path(path)
    return _load_cached(str(p.resolve()), p.stat().st_mtime_ns)


def run_network(
    net: TransformerNet,
    x: torch.Tensor,
    style: torch.Tensor,
    dtype: torch.dtype | None = None,
    tile_size: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    stats_size: int = DEFAULT_STATS_SIZE,
    channels_last: bool = True,
) -> torch.Tensor:
    """Stylize ``x`` (1, 3, H, W) in [0, 1] with style weights ``style`` (N,); returns (1, 3, H, W) fp32.

    Images over ``tile_size ** 2`` pixels run in overlapping tiles (see :mod:`painterly.engines.tiling`).
    """
    device = next(net.parameters()).device
    # .contiguous(): a permuted HWC view has odd strides that send the bf16 channels_last
    # convolutions down a path 2-3x slower.
    x = x.to(device).contiguous()
    style = style.to(device).view(1, -1)
    h, w = x.shape[-2:]
    xp, _ = pad_to_multiple(x, 4)
    if h * w <= tile_size * tile_size:
        return _forward(net, xp, style, dtype, channels_last)[..., :h, :w]
    tile_size, overlap = tile_geometry(tile_size, overlap)
    # Instance-norm statistics from the whole image, or a downscaled copy of it.
    size = proxy_size(h, w, stats_size)
    proxy = xp if size is None else F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    stats = NormStats("collect")
    _forward(net, proxy, style, dtype, channels_last, stats)
    hp, wp = xp.shape[-2:]
    rows, cols = axis_tiles(hp, tile_size, overlap), axis_tiles(wp, tile_size, overlap)
    wr = [torch.from_numpy(a).to(device) for a in axis_weights(rows, overlap)]
    wc = [torch.from_numpy(a).to(device) for a in axis_weights(cols, overlap)]
    out = torch.zeros(1, 3, hp, wp, device=device)
    for (r0, r1), wy in zip(rows, wr, strict=True):
        for (c0, c1), wx in zip(cols, wc, strict=True):
            y = _forward(net, xp[..., r0:r1, c0:c1], style, dtype, channels_last, stats.replay())
            out[..., r0:r1, c0:c1].addcmul_(y, wy[:, None] * wx[None, :])
            del y
    return out[..., :h, :w].clamp_(0, 1)


def _forward(net: TransformerNet, x: torch.Tensor, style: torch.Tensor, dtype: torch.dtype | None,
             channels_last: bool, norm: NormStats | None = None) -> torch.Tensor:
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(x.device, dtype):
        y = net(x, style, norm)
    return y.float().contiguous()


class TorchStylizer:
    """A :class:`StylizationModel` on a device and precision (see :class:`painterly.engines.Stylizer`)."""

    engine = "torch"

    def __init__(self, model: StylizationModel, device: str | torch.device | None = None,
                 precision: str = "auto") -> None:
        self.model, self.styles, self.path = model, model.styles, model.path
        self.device = resolve_device(None if device in (None, "auto") else str(device))
        self.dtype = resolve_precision(precision, self.device)

    @property
    def names(self) -> list[str]:
        return self.model.names

    def style_weights(self, style: StyleSpec) -> np.ndarray:
        return style_weights(self.names, style, self.path or "")

    def run(self, x: np.ndarray, weights: np.ndarray, tile_size: int = DEFAULT_TILE,
            overlap: int = DEFAULT_OVERLAP, stats_size: int = DEFAULT_STATS_SIZE) -> np.ndarray:
        """Stylize ``x`` (1, 3, H, W) float32 in [0, 1]; large images in tiles. Returns (1, 3, H, W)."""
        _keep_memory(self.device)
        net = self.model.net.eval()
        if next(net.parameters()).device != self.device:
            net.to(self.device)  # the model stays on the device it was last used on
        out = run_network(net, torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(weights)),
                          dtype=self.dtype, tile_size=tile_size, overlap=overlap, stats_size=stats_size)
        return out.cpu().numpy()


# --------------------------------------------------------------------------------------------
# Arbitrary style transfer (AdaIN, meta network)
# --------------------------------------------------------------------------------------------


def _keep_memory(device: torch.device) -> None:
    """On CPU, keep freed blocks in glibc's heap (:func:`painterly.malloc.keep_freed_memory`): a forward pass
    frees and allocates the same activation buffers of tens of MB, and serving them from fresh, zero-filled
    pages cost about a quarter of a 1024 px slim-student stylization on the 2-core reference machine.
    ``PAINTERLY_KEEP_MEMORY=0`` opts out (the process then returns freed memory to the OS at once)."""
    if device.type == "cpu":
        keep_freed_memory()


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    return pad_to_multiple(x, multiple)[0]


def _is_ready(module: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> bool:
    p = next(module.parameters(), None)
    return p is not None and not module.training and p.device == device and p.dtype == (dtype or torch.float32)


def _prepared(module: torch.nn.Module, device: torch.device, dtype: torch.dtype | None,
              fresh: bool = False) -> torch.nn.Module:
    """An inference version of ``module`` on ``device``: bf16 weights and channels_last when bf16 is the fast
    path, in-place ReLUs. A module that is already prepared is used as is; others are copied (unless
    ``fresh``: created for this call) so the caller's model is never changed."""
    if _is_ready(module, device, dtype):
        return module
    if not fresh:
        module = copy.deepcopy(module)
    module = module.eval().requires_grad_(False).to(device)
    if dtype is not None:
        module = module.to(dtype=dtype, memory_format=torch.channels_last)
    for m in module.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = True  # inference only, and no conv output is ever returned here: saves a full copy per layer
    return module


def load_adain(model: AdaIN | str | os.PathLike | None = None) -> AdaIN:
    """The AdaIN model with the decoder from ``model`` (a file; None: the shipped decoder)."""
    return model if isinstance(model, AdaIN) else AdaIN(load_decoder(model))


def prepare(model: AdaIN | MetaNetwork | str | os.PathLike | None = None, method: str = "adain",
            device: str | None = None, precision: str = "auto") -> AdaIN | MetaNetwork:
    """Load (None: the shipped weights) and convert a model once, for many :func:`painterly.transfer` calls.

    ``transfer(..., model=prepare())`` skips loading and the per-call bf16 copy of the weights.
    Pass the same ``device`` and ``precision`` to :func:`painterly.transfer`.
    """
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    if method == "adain":
        return _prepared(load_adain(model), dev, dtype, fresh=not isinstance(model, AdaIN))
    if method == "meta":
        meta = model if isinstance(model, MetaNetwork) else load_meta(model)
        return meta.to(dev).eval()
    raise PainterlyError(f"unknown method '{method}'; choose from adain, meta")


def _as_input(img: Image.Image, device: torch.device, dtype: torch.dtype | None, multiple: int) -> torch.Tensor:
    x = _pad_to(to_tensor(img, device), multiple)
    if dtype is not None:
        x = x.to(dtype=dtype).contiguous(memory_format=torch.channels_last)
    return x


class TorchAdaIN:
    """AdaIN on torch with the model loaded and converted once (device, precision), for many transfers."""

    engine = "torch"

    def __init__(self, model: AdaIN | str | os.PathLike | None = None, device: str | None = None,
                 precision: str = "auto") -> None:
        if isinstance(model, MetaNetwork):
            raise PainterlyError("method 'adain' needs an AdaIN decoder, got a meta network")
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.net = _prepared(load_adain(model), self.device, self.dtype, fresh=not isinstance(model, AdaIN))

    def style_stats(self, painting: Image.Image) -> Stats:
        """A painting's relu4_1 channel mean and std: taken once per painting."""
        with torch.no_grad():  # not inference_mode: the VGG weight cache must not hold inference tensors
            return self.net.style_stats(_as_input(painting, self.device, self.dtype, 1))

    def apply(self, content: Image.Image, stats: Sequence[Stats | None], alpha: float, weights: Sequence[float],
              regions: np.ndarray | None = None) -> np.ndarray:
        """AdaIN of ``content`` with paintings' ``stats`` (see :meth:`painterly.engines.onnx.OnnxAdaIN.apply`);
        the (1, 3, H, W) float32 result in [0, 1]."""
        _keep_memory(self.device)
        stats = list(stats)
        if regions is not None and len(stats) == 1:
            stats.append(None)  # single style + mask: the black region keeps the photo
        with torch.no_grad():
            x = _as_input(content, self.device, self.dtype, 8)
            masks = None if regions is None else _pad_to(torch.from_numpy(regions).to(self.device), 8)
            out = self.net.decode(self.net.encode(x), stats, alpha, weights if masks is None else None, masks)
        return out.float().clamp(0, 1)[..., : content.size[1], : content.size[0]].cpu().numpy()

    def transfer(self, content: Image.Image, paintings: list[Image.Image], alpha: float, weights: Sequence[float],
                 regions: np.ndarray | None = None) -> np.ndarray:
        """:meth:`apply` with the statistics of ``paintings``."""
        return self.apply(content, [self.style_stats(p) for p in paintings], alpha, weights, regions)


def run_transfer(method: str, content: Image.Image, paintings: list[Image.Image], alpha: float,
                 weights: list[float], regions: np.ndarray | None, model, device: str | None = None,
                 precision: str = "auto") -> np.ndarray:
    """One transfer on torch; returns the (1, 3, H, W) float32 result at ``content``'s size, in [0, 1].

    ``regions``: (1, K, H, W) one-hot masks at ``content``'s size, or None (see :mod:`painterly.methods.transfer`).
    """
    if method == "adain":
        return TorchAdaIN(model, device, precision).transfer(content, paintings, alpha, weights, regions)
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    _keep_memory(dev)
    masks = None if regions is None else torch.from_numpy(regions)
    with torch.no_grad():  # not inference_mode: the VGG weight cache must not hold inference tensors
        out = _run_meta(content, paintings, alpha, weights, masks, model, dev, dtype)
    return out.float().clamp(0, 1)[..., : content.size[1], : content.size[0]].cpu().numpy()


def _run_meta(content: Image.Image, paintings: list[Image.Image], alpha: float, weights: list[float],
              regions: torch.Tensor | None, model, device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
    if isinstance(model, AdaIN):
        raise PainterlyError("method 'meta' needs a meta network, got an AdaIN model")
    meta = model if isinstance(model, MetaNetwork) else load_meta(model)
    meta = meta.to(device).eval()
    encoder = _prepared(meta.stats_encoder(), device, dtype, fresh=True)
    layers = list(meta.config.stat_layers)
    params = [meta(style_statistics(encoder(_as_input(p, device, dtype, 1), layers), layers)) for p in paintings]
    x = _as_input(content, device, dtype, 4)
    photo = x.float()
    if regions is None:
        mixed = {k: sum(w * p[k] for w, p in zip(weights, params, strict=True)) for k in params[0]}
        out = _prepared(meta.transformer(mixed), device, dtype, fresh=True)(x).float()
    else:
        soft = _soft_regions(_pad_to(regions.to(device), 4))
        outs = [_prepared(meta.transformer(p), device, dtype, fresh=True)(x).float() for p in params]
        if len(outs) == 1:
            outs.append(photo)  # single style + mask: the black region keeps the photo
        out = sum(soft[:, k : k + 1] * o for k, o in enumerate(outs))
    return alpha * out + (1.0 - alpha) * photo if alpha < 1.0 else out


def _soft_regions(regions: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Slightly blurred region masks (still summing to 1) so region borders do not show a seam."""
    k = 2 * radius + 1
    blurred = F.avg_pool2d(F.pad(regions, (radius,) * 4, mode="replicate"), k, stride=1)
    return blurred / blurred.sum(dim=1, keepdim=True).clamp_min(1e-8)


def generate_transformer(painting: Image.Image, model: MetaNetwork | str | os.PathLike | None = None
                         ) -> TransformerNet:
    """A single-style transformer for ``painting`` (already read and sized) from the meta network."""
    meta = model if isinstance(model, MetaNetwork) else load_meta(model)
    return meta.generate(to_tensor(painting), meta.stats_encoder())
