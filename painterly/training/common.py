"""Reusable training machinery, generic over the model being trained.

Used by the feed-forward trainer (:mod:`painterly.training.feedforward`) and meant to be
reused by any other trainer (AdaIN decoder, meta network). The pieces:

Data
    ``ContentDataset(source, size=256, scale=(1.0, 2.0), device="cpu")``: every image under a
    folder (recursive) or a list of paths, decoded once and kept in memory as uint8 tensors on
    ``device`` (downscaled so the short side is ``size * scale[1]``), so a GPU is never starved.
    Unreadable files are skipped (``.skipped`` lists ``(path, reason)``; one warning with the
    count), never a crash. ``dataset.sample(batch_size, generator, step, dist)`` returns a float
    batch ``(B, 3, size, size)`` in [0, 1]: random square crops whose side is ``size * U(scale)``
    (clipped to the image), resized to ``size``, randomly flipped. Which images a step sees
    follows a per-epoch permutation sharded over the ranks like ``DistributedSampler`` (disjoint
    per rank, every image once per epoch); crops/flips come from ``generator``. Everything is a
    pure function of ``(seed, step, rank)``, which makes ``--resume`` exact without saving data
    RNG state. ``dataset.fixed_batch(n)`` gives a deterministic validation batch (centre crops).

Training loop
    ``Trainer(model, optimizer, step_fn, options, checkpoint=path, sample_fn=None, meta=None,
    post_backward=None, lr_at=None).run() -> TrainResult``.
    ``step_fn(ctx: StepContext) -> dict[str, Tensor]`` computes the losses of one step (it is
    called under autocast) and must return a ``"total"`` entry; the trainer does
    ``zero_grad``/``backward``/``post_backward()``/optional grad clipping/``optimizer.step``.
    ``ctx.model`` is the model to call (DDP-wrapped when distributed), ``ctx.generator`` the
    step's CPU generator, ``ctx.sample(dataset, batch_size)`` a shortcut for the data batch.
    The trainer also does: progress bar (losses, images/s), CSV log (``options.log_csv``),
    NaN/inf detection (raises :class:`TrainingDiverged` and never overwrites the last good
    checkpoint), time limit (``options.time_limit`` s: stop cleanly and save), atomic
    checkpoints every ``options.checkpoint_every`` steps, at the end and on Ctrl-C/SIGTERM
    (``TrainResult.stop_reason == "interrupted"``), exact ``--resume`` (``options.resume``:
    model, optimizer, step, RNG states), sample grids every ``options.sample_every`` steps
    (``sample_fn(model, step) -> PIL.Image`` saved as ``<samples_dir>/step_000100.png``).
    ``meta`` (JSON-able dict, e.g. ``{"config": ...}``) is stored in checkpoints; on resume its
    ``"config"`` entry must equal the checkpoint's (else a :class:`PainterlyError`).

Checkpoints
    One atomic safetensors file: model tensors (``model/<key>``), optimizer state flattened
    (``optim/<index>/<key>``), torch RNG states; JSON metadata holds the step, optimizer
    hyper-parameters, Python RNG state and ``meta``. ``save_checkpoint`` / ``load_checkpoint``.

Precision and devices
    ``TrainOptions.device`` ("auto", "cpu", "cuda", "cuda:1"), ``fp32`` to turn off bf16
    autocast (used on CUDA with bf16 support and on CPUs with AMX, see :mod:`painterly.runtime`);
    ``channels_last`` is applied to the model and (by ``ContentDataset``) to batches.

Distributed (``torchrun --nproc_per_node N``)
    ``init_distributed(device)`` reads the torchrun environment (gloo on CPU, nccl on CUDA) and
    returns ``(DistInfo, device)``; the trainer wraps the model in DistributedDataParallel,
    all-reduces the logged losses and the stop flags (so every rank stops at the same step),
    and only rank 0 logs, saves samples and writes checkpoints. ``cleanup_distributed()`` at
    the end. Without torchrun everything runs single-process.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..errors import ImageError, PainterlyError
from ..imageio import atomic_write_bytes, find_images, read_image, save_image
from ..runtime import autocast, keep_freed_memory, resolve_device, resolve_precision

CHECKPOINT_FORMAT = "painterly.checkpoint.v1"


class TrainingDiverged(PainterlyError):
    """The loss became NaN or infinite."""


# --------------------------------------------------------------------------------------------
# Options and results
# --------------------------------------------------------------------------------------------


@dataclass
class TrainOptions:
    """Loop settings shared by every trainer (the model/loss settings live in each trainer)."""

    steps: int = 40_000
    batch_size: int = 8
    size: int = 256
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    fp32: bool = False
    channels_last: bool = True
    grad_clip: float | None = None
    checkpoint_every: int = 500
    sample_every: int = 0
    log_every: int = 10
    time_limit: float | None = None
    log_csv: str | None = None
    samples_dir: str | None = None
    resume: bool = False
    progress: bool = True
    #: learning-rate schedule of the feed-forward trainer: "constant" or "cosine" (to 0 at ``steps``),
    #: after a linear warm-up over ``warmup_steps`` (useful when continuing a trained model)
    lr_schedule: str = "constant"
    warmup_steps: int = 0


def lr_schedule(lr: float, steps: int, kind: str = "constant", warmup: int = 0) -> Callable[[int], float] | None:
    """``step -> learning rate``: linear warm-up over ``warmup`` steps, then constant or cosine to 0
    at ``steps``; ``None`` for a plain constant rate."""
    if kind not in ("constant", "cosine"):
        raise PainterlyError(f"unknown learning-rate schedule {kind!r}; choose constant or cosine")
    if kind == "constant" and warmup <= 0:
        return None

    def at(step: int) -> float:
        scale = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        if kind == "cosine":
            scale *= 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
        return lr * scale

    return at


@dataclass
class TrainResult:
    step: int  # steps completed in total (including resumed ones)
    stop_reason: str  # "done" | "time_limit" | "interrupted"
    elapsed: float  # seconds spent in this run
    images_per_s: float
    losses: dict[str, float] = field(default_factory=dict)  # last logged (all-rank mean)
    checkpoint: str | None = None


# --------------------------------------------------------------------------------------------
# Distributed helpers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device = "auto") -> tuple[DistInfo, torch.device]:
    """Initialise the process group from torchrun's environment (no-op without it).

    Returns the rank info and the device this process should use (``cuda:LOCAL_RANK`` on GPU).
    """
    dev = resolve_device(str(device) if device is not None else None)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), dev
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local), dev


def cleanup_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed(device: str | torch.device = "auto") -> Iterator[tuple[DistInfo, torch.device]]:
    """:func:`init_distributed` for one training run; the process group it creates is destroyed
    afterwards (one the caller had already initialised is left alone)."""
    own_group = current_dist().world_size == 1
    dist, dev = init_distributed(device)
    try:
        yield dist, dev
    finally:
        if own_group:
            cleanup_distributed()


def current_dist() -> DistInfo:
    """Rank info of an already initialised process group (single process otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """A well-mixed 63-bit seed for ``(seed, step, rank)``."""
    digest = hashlib.blake2b(f"{seed}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """CPU generator for one step of one rank: data sampling is a pure function of these."""
    return torch.Generator().manual_seed(step_seed(seed, step, rank))


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _image_paths(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return [path]
        if not path.exists():
            raise ImageError(f"data folder '{source}' does not exist")
        return find_images(path)
    paths: list[Path] = []
    for item in source:
        paths.extend(_image_paths(item))
    return paths


class ContentDataset:
    """Photos preloaded into memory; random square crops at random scale, random flips.

    Args:
        source: a folder (searched recursively), an image file, or a list of either.
        size: side of the returned crops.
        scale: range of the crop side relative to ``size`` before resizing to ``size``
            (1.0: a native-resolution crop; 2.0: a crop twice as large, downscaled).
        device: where the decoded images (uint8) and batches live.
        channels_last: return batches in channels_last memory format.
        max_images: keep at most this many readable images (in sorted order).
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str | os.PathLike],
        size: int = 256,
        scale: tuple[float, float] = (1.0, 2.0),
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        seed: int = 0,
        max_images: int | None = None,
    ) -> None:
        if size < 8:
            raise PainterlyError(f"training image size must be at least 8 pixels, got {size}")
        lo, hi = scale
        if not 0 < lo <= hi:
            raise PainterlyError(f"bad crop scale range {scale}")
        self.size, self.scale, self.seed = size, (float(lo), float(hi)), seed
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.skipped: list[tuple[Path, str]] = []
        self.paths: list[Path] = []
        self.images: list[torch.Tensor] = []
        short_target = max(size, math.ceil(size * hi))
        for path in _image_paths(source):
            if max_images is not None and len(self.images) >= max_images:
                break
            try:
                img = read_image(path).rgb
                img = _resize_short(img, short_target)
            except (ImageError, OSError, ValueError) as exc:  # never crash on one bad file
                self.skipped.append((path, str(exc)))
                continue
            arr = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
            self.images.append(arr.to(self.device))
            self.paths.append(path)
        if self.skipped:
            first = self.skipped[0]
            warnings.warn(f"skipped {len(self.skipped)} unreadable image(s), e.g. {first[1]}", stacklevel=2)
        if not self.images:
            raise PainterlyError(f"no readable training images in {source}")
        self._perms: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.images)

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            gen = torch.Generator().manual_seed(step_seed(self.seed, epoch, -1))
            self._perms[epoch] = torch.randperm(len(self.images), generator=gen)
        return self._perms[epoch]

    def indices(self, batch_size: int, step: int, dist: DistInfo = DistInfo()) -> list[int]:
        """Image indices for ``step`` on ``dist.rank`` (per-epoch permutation, sharded)."""
        n = len(self.images)
        first = (step * dist.world_size + dist.rank) * batch_size
        return [int(self._perm(g // n)[g % n]) for g in range(first, first + batch_size)]

    def crop(self, index: int, generator: torch.Generator) -> torch.Tensor:
        """One random crop of image ``index`` as a float tensor (3, size, size) in [0, 1]."""
        img = self.images[index]
        h, w = img.shape[-2:]
        lo, hi = self.scale
        u = float(torch.rand((), generator=generator))
        side = min(h, w, max(1, round(self.size * (lo + (hi - lo) * u))))
        top = int(torch.randint(0, h - side + 1, (), generator=generator))
        left = int(torch.randint(0, w - side + 1, (), generator=generator))
        flip = bool(torch.rand((), generator=generator) < 0.5)
        patch = img[:, top : top + side, left : left + side].unsqueeze(0).float().div_(255.0)
        if side != self.size:
            patch = F.interpolate(patch, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=side > self.size)
        if flip:
            patch = patch.flip(-1)
        return patch[0].clamp_(0.0, 1.0)

    def sample(self, batch_size: int, generator: torch.Generator, step: int = 0,
               dist: DistInfo = DistInfo()) -> torch.Tensor:
        """A random batch (B, 3, size, size) in [0, 1] for ``step`` on this rank."""
        batch = torch.stack([self.crop(i, generator) for i in self.indices(batch_size, step, dist)])
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def fixed_batch(self, n: int = 4, size: int | None = None) -> torch.Tensor:
        """Deterministic validation batch: centre crops of ``n`` evenly spread images."""
        size = size or self.size
        picks = np.linspace(0, len(self.images) - 1, num=min(n, len(self.images))).round().astype(int)
        out = []
        for i in picks:
            img = self.images[int(i)]
            h, w = img.shape[-2:]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            patch = img[:, top : top + side, left : left + side].unsqueeze(0).float() / 255.0
            out.append(F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False,
                                     antialias=side > size)[0].clamp(0, 1))
        return torch.stack(out)


def _resize_short(img: Image.Image, short: int) -> Image.Image:
    w, h = img.size
    scale = short / min(w, h)
    if scale >= 1.0 and min(w, h) >= short:
        return img
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def image_grid(images: torch.Tensor | Sequence[torch.Tensor], ncol: int, pad: int = 2) -> Image.Image:
    """Tile images (each (3, H, W) in [0, 1], same size) into a PIL grid with ``ncol`` columns."""
    imgs = [t.detach().float().cpu().clamp(0, 1) for t in images]
    if not imgs:
        raise ValueError("no images for the grid")
    h, w = imgs[0].shape[-2:]
    nrow = math.ceil(len(imgs) / ncol)
    canvas = torch.ones(3, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for k, t in enumerate(imgs):
        r, c = divmod(k, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[:, y : y + h, x : x + w] = t[:, :h, :w]
    arr = (canvas * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


@dataclass
class CheckpointState:
    step: int
    meta: dict[str, Any]


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
    return tensors, {"python": _jsonable(random.getstate())}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return [_jsonable(x) for x in obj]
    return obj


def _tupled(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_tupled(x) for x in obj)
    return obj


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write model + optimizer state + RNG states + ``meta`` atomically as one safetensors file."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for k, v in unwrap(model).state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous().clone()
    opt_meta: dict[str, Any] = {}
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, state in sd["state"].items():
            for key, val in state.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"optim/{idx}/{key}"] = val.detach().cpu().contiguous().clone()
                else:
                    scalars.setdefault(str(idx), {})[key] = val
        opt_meta = {"param_groups": sd["param_groups"], "scalars": scalars, "indices": list(sd["state"])}
    rng_tensors, rng_meta = _rng_state()
    tensors.update(rng_tensors)
    header = {
        "format": CHECKPOINT_FORMAT,
        "step": int(step),
        "optimizer": opt_meta,
        "rng": rng_meta,
        "meta": dict(meta or {}),
    }
    data = save(tensors, metadata={"painterly": json.dumps(header)})
    path = Path(path)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise PainterlyError(f"cannot write checkpoint '{path}': {exc.strerror or exc}") from None
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Raw tensors and header of a checkpoint; a foreign or corrupt file -> PainterlyError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise PainterlyError(f"no checkpoint at '{path}'")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = json.loads((fh.metadata() or {})["painterly"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise PainterlyError(f"checkpoint '{path}' is corrupt or not a painterly checkpoint ({exc})") from None
    if header.get("format") != CHECKPOINT_FORMAT:
        raise PainterlyError(f"'{path}' is not a painterly training checkpoint")
    return tensors, header


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = True,
) -> CheckpointState:
    """Restore model, optimizer and RNG states saved by :func:`save_checkpoint`."""
    tensors, header = read_checkpoint(path)
    target = unwrap(model)
    model_sd = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        target.load_state_dict(model_sd, strict=True)
    except RuntimeError as exc:
        raise PainterlyError(f"checkpoint '{path}' does not match the model: {str(exc).splitlines()[0]}") from None
    if optimizer is not None and header.get("optimizer"):
        opt = header["optimizer"]
        state: dict[int, dict[str, Any]] = {}
        for idx in opt["indices"]:
            entry = dict(opt["scalars"].get(str(idx), {}))
            prefix = f"optim/{idx}/"
            entry.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            state[int(idx)] = entry
        groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in opt["param_groups"]]
        try:
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as exc:
            raise PainterlyError(f"checkpoint '{path}' optimizer state does not match: {exc}") from None
    if restore_rng:
        torch.set_rng_state(tensors["rng/torch"])
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
        if cuda_states and torch.cuda.is_available():
            for i, st in enumerate(cuda_states[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(st, i)
        if "python" in header.get("rng", {}):
            random.setstate(_tupled(header["rng"]["python"]))
    return CheckpointState(step=int(header["step"]), meta=header.get("meta", {}))


# --------------------------------------------------------------------------------------------
# CSV log
# --------------------------------------------------------------------------------------------


class CsvLog:
    """Append-only CSV log with a header; flushed after every row."""

    def __init__(self, path: str | os.PathLike, fields: Sequence[str], resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.fields = list(fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.DictReader(fh) if _int_or(r.get("step"), 0) <= resume_step]
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.fields, extrasaction="ignore")
        self._writer.writeheader()
        for r in rows:
            self._writer.writerow(r)
        self._fh.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


# --------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------


@dataclass
class StepContext:
    """What a ``step_fn`` gets: the (possibly DDP-wrapped) model and the step's randomness."""

    model: nn.Module
    step: int  # 0-based index of the step being computed
    generator: torch.Generator
    device: torch.device
    dist: DistInfo
    channels_last: bool = False

    def sample(self, dataset: ContentDataset, batch_size: int) -> torch.Tensor:
        return dataset.sample(batch_size, self.generator, self.step, self.dist)


StepFn = Callable[[StepContext], Mapping[str, torch.Tensor]]
SampleFn = Callable[[nn.Module, int], "Image.Image | None"]


@contextmanager
def _stop_on_signals(flag: threading.Event) -> Iterator[None]:
    """First SIGINT/SIGTERM sets ``flag`` (stop after this step); a second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if flag.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.set()

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Trainer:
    """The training loop; see the module docstring for the contract.

    Args:
        model: the plain module (moved to the device, channels_last and DDP-wrapped here).
        optimizer: built on ``model``'s parameters (after ``model`` is on the right device is
            not required: optimizer state is created lazily by torch).
        step_fn: computes the losses of one step.
        options: loop settings.
        checkpoint: checkpoint file path (written by rank 0).
        sample_fn: returns a PIL image of validation samples for a step (rank 0 only).
        meta: JSON-able data stored in each checkpoint (``meta["config"]`` checked on resume).
        post_backward: called after ``backward`` and before ``optimizer.step`` (e.g. to zero
            the gradients of frozen rows).
        lr_at: optional ``step -> learning rate`` schedule.
        device, dist: from :func:`init_distributed` (default: resolved from ``options``).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        step_fn: StepFn,
        options: TrainOptions,
        checkpoint: str | os.PathLike,
        sample_fn: SampleFn | None = None,
        meta: Mapping[str, Any] | None = None,
        post_backward: Callable[[], None] | None = None,
        lr_at: Callable[[int], float] | None = None,
        device: torch.device | None = None,
        dist: DistInfo | None = None,
    ) -> None:
        self.options = options
        self.dist = dist or current_dist()
        self.device = device or resolve_device(options.device)
        self.model = model
        self.optimizer = optimizer
        self.step_fn = step_fn
        self.checkpoint = Path(checkpoint)
        self.sample_fn = sample_fn
        self.meta = dict(meta or {})
        self.post_backward = post_backward
        self.lr_at = lr_at
        self.dtype = resolve_precision("fp32" if options.fp32 else "auto", self.device)
        self.step = 0
        self.last_good_step: int | None = None

    # -- helpers -----------------------------------------------------------------------------
    def _save(self) -> None:
        if self.dist.is_main:
            save_checkpoint(self.checkpoint, self.model, self.optimizer, self.step,
                            {**self.meta, "options": asdict(self.options)})
        self.last_good_step = self.step
        barrier(self.dist)

    def _resume(self) -> None:
        state = load_checkpoint(self.checkpoint, self.model, self.optimizer)
        saved, current = state.meta.get("config"), self.meta.get("config")
        if current is not None:  # compare as stored: JSON turns tuples into lists
            current = json.loads(json.dumps(current, default=str))
        if current is not None and saved is not None and saved != current:
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise PainterlyError(f"checkpoint '{self.checkpoint}' was made with different settings "
                                 f"({', '.join(diff)}); use the same options or start without --resume")
        self.step = state.step
        self.last_good_step = state.step

    def _sample(self) -> None:
        if not (self.sample_fn and self.dist.is_main):
            return
        net = unwrap(self.model)
        was_training = net.training
        net.eval()
        try:
            with torch.inference_mode(), autocast(self.device, self.dtype):
                img = self.sample_fn(net, self.step)
        finally:
            net.train(was_training)
        if img is not None:
            out_dir = Path(self.options.samples_dir or self.checkpoint.with_suffix("").as_posix() + "-samples")
            save_image(img, out_dir / f"step_{self.step:06d}.png")

    def _reduce(self, values: list[float]) -> list[float]:
        if not self.dist.enabled:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        opts = self.options
        self.model.to(self.device)
        if self.device.type == "cpu":
            keep_freed_memory()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
            torch.backends.cuda.matmul.allow_tf32 = True
        if opts.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.train()
        if opts.resume:
            self._resume()
        net: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        log: CsvLog | None = None
        bar = None
        if opts.progress and self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=opts.steps if opts.steps < 10**6 else None, initial=self.step, unit="step",
                       dynamic_ncols=True, mininterval=1.0)
        start = time.perf_counter()
        start_step = self.step
        reason = "done"
        losses: dict[str, float] = {}
        stop = threading.Event()
        keys: list[str] | None = None
        sum_vals: list[float] = []
        n_vals = 0
        try:
            with _stop_on_signals(stop):
                while self.step < opts.steps:
                    if self.lr_at is not None:
                        for g in self.optimizer.param_groups:
                            g["lr"] = self.lr_at(self.step)
                    ctx = StepContext(net, self.step, step_generator(opts.seed, self.step, self.dist.rank),
                                      self.device, self.dist, opts.channels_last)
                    self.optimizer.zero_grad(set_to_none=True)
                    with autocast(self.device, self.dtype):
                        out = self.step_fn(ctx)
                    total = out["total"]
                    total.backward()
                    if keys is None:
                        keys = list(out)
                        sum_vals = [0.0] * len(keys)
                    vals = torch.stack([out[k].detach().float() for k in keys]).tolist()  # one device sync
                    timed_out = opts.time_limit is not None and time.perf_counter() - start >= opts.time_limit
                    flags = [float(not all(math.isfinite(v) for v in vals)), float(stop.is_set()), float(timed_out)]
                    reduced = self._reduce(vals + flags)
                    world = self.dist.world_size
                    vals = [v / world for v in reduced[: len(vals)]]
                    diverged, interrupted, timed_out = (bool(f) for f in reduced[len(vals):])
                    if diverged:
                        where = (f"the last good checkpoint is '{self.checkpoint}' (step {self.last_good_step})"
                                 if self.last_good_step is not None else "no checkpoint was written yet")
                        raise TrainingDiverged(
                            f"loss became NaN/inf at step {self.step + 1}; training stopped and {where}. "
                            "Try a lower learning rate, lower loss weights or --fp32.")
                    if self.post_backward is not None:
                        self.post_backward()
                    if opts.grad_clip:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), opts.grad_clip)
                    self.optimizer.step()
                    self.step += 1
                    sum_vals = [a + b for a, b in zip(sum_vals, vals, strict=True)]
                    n_vals += 1
                    elapsed = time.perf_counter() - start
                    ips = (self.step - start_step) * opts.batch_size * world / max(elapsed, 1e-9)
                    last = self.step == opts.steps or interrupted or timed_out
                    if self.step % max(1, opts.log_every) == 0 or last:
                        losses = {k: v / n_vals for k, v in zip(keys, sum_vals, strict=True)}
                        sum_vals, n_vals = [0.0] * len(keys), 0
                        if log is None and opts.log_csv and self.dist.is_main:
                            log = CsvLog(opts.log_csv, ["step", "time", "images_per_s", "lr", *keys],
                                         resume_step=start_step if opts.resume else None)
                        if log is not None:
                            log.write({"step": self.step, "time": round(elapsed, 3), "images_per_s": ips,
                                       "lr": self.optimizer.param_groups[0]["lr"], **losses})
                        if bar is not None:
                            bar.set_postfix({**{k: f"{v:.3g}" for k, v in losses.items()}, "img/s": f"{ips:.1f}"})
                    if bar is not None:
                        bar.update(1)
                    if opts.sample_every and self.step % opts.sample_every == 0:
                        self._sample()
                    if interrupted or timed_out:
                        reason = "interrupted" if interrupted else "time_limit"
                        break
                    if opts.checkpoint_every and self.step % opts.checkpoint_every == 0 and self.step < opts.steps:
                        self._save()
            if n_vals:
                losses = {k: v / n_vals for k, v in zip(keys or [], sum_vals, strict=True)}
            self._save()
            if opts.sample_every and self.step % opts.sample_every != 0:
                self._sample()
        finally:
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
        elapsed = time.perf_counter() - start
        ips = (self.step - start_step) * opts.batch_size * self.dist.world_size / max(elapsed, 1e-9)
        return TrainResult(self.step, reason, elapsed, ips, losses, str(self.checkpoint))
