"""The training loop shared by every model kind: :class:`Trainer`, driven by an :class:`Objective`.

An objective says what differs per model kind (what to build, the losses of one step, the preview
samples, the run's config, what to do with the trained model); :func:`train` runs it::

    run = train(MyObjective(...), TrainOptions(steps=1000, time_limit=3600), "run.ckpt.safetensors")
    run.result.step, run.output   # what the objective's finish() returned (e.g. the saved model's path)

The loop itself (``Trainer(model, optimizer, step_fn, options, checkpoint, ...)``, also usable
directly): ``step_fn(ctx: StepContext) -> dict[str, Tensor]`` computes the losses of one step (it
is called under autocast) and must return a ``"total"`` entry; the trainer does
``zero_grad``/``backward``/``post_backward()``/optional grad clipping/``optimizer.step``.
``ctx.model`` is the model to call (DDP-wrapped when distributed), ``ctx.generator`` the step's
CPU generator, ``ctx.sample(dataset, batch_size)`` a shortcut for the data batch. The trainer also
does: progress bar (losses, images/s), CSV log (``options.log_csv``), NaN/inf detection (raises
:class:`TrainingDiverged` and never overwrites the last good checkpoint), time limit
(``options.time_limit`` s: stop cleanly and save), atomic checkpoints every
``options.checkpoint_every`` steps, at the end and on Ctrl-C/SIGTERM (``TrainResult.stop_reason ==
"interrupted"``), exact ``--resume`` (``options.resume``: model, optimizer, step, RNG states),
sample grids every ``options.sample_every`` steps (``sample_fn(model, step) -> PIL.Image`` saved as
``<samples_dir>/step_000100.png``). ``meta`` (JSON-able dict, e.g. ``{"config": ...}``) is stored in
checkpoints; on resume its ``"config"`` entry must equal the checkpoint's (else a
:class:`PainterlyError`).

Precision and devices: ``TrainOptions.device`` ("auto", "cpu", "cuda", "cuda:1"), ``fp32`` to turn
off bf16 autocast (used on CUDA with bf16 support and on CPUs with AMX, see
:mod:`painterly.runtime`); ``channels_last`` is applied to the model and (by ``ContentDataset``) to
batches. Process-wide state is left as found: :func:`train` gives back the caller's torch and Python
random states (it seeds them, and ``--resume`` restores the checkpoint's), cuDNN/TF32 flags are set
for the run and restored, and glibc's allocator is tuned only when ``options.keep_freed_memory`` asks
for it (the CLI does).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from PIL import Image
from torch import nn

from ..errors import PainterlyError
from ..imageio import save_image
from ..runtime import autocast, keep_freed_memory, resolve_device, resolve_precision
from .checkpoint import load_checkpoint, save_checkpoint
from .csvlog import CsvLog
from .data import ContentDataset
from .distributed import DistInfo, barrier, current_dist, distributed, step_generator, unwrap
from .options import LrAt, TrainOptions, TrainResult, lr_schedule

M = TypeVar("M", bound=nn.Module)


class TrainingDiverged(PainterlyError):
    """The loss became NaN or infinite."""


@contextmanager
def _fast_backend_flags(device: torch.device) -> Iterator[None]:
    """On CUDA: cuDNN autotuning (fixed input sizes) and TF32 matmuls for the run, restored afterwards."""
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = True, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = old


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


def on_device(module: M, device: torch.device, channels_last: bool) -> M:
    """``module`` (a frozen helper of an objective: VGG encoder, teacher) on ``device``, channels-last if asked."""
    module.to(device)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    return module


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
        lr_at: optional ``(step, progress) -> learning rate`` schedule for ``options.lr`` (other
            param groups keep their ratio to it).
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
        lr_at: LrAt | None = None,
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
        if options.lr_schedule == "cosine-time" and options.time_limit is None:
            raise PainterlyError("--lr-schedule cosine-time decays the rate over --time-limit: set one")
        # the schedule gives the rate for options.lr; groups with another rate (e.g. a network part
        # trained faster) keep their ratio to it
        self.lr_scales = [g["lr"] / options.lr if options.lr else 1.0 for g in optimizer.param_groups]
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
        """Train to ``options.steps`` (or the time limit / a signal); backend flags are restored afterwards."""
        with _fast_backend_flags(self.device):
            return self._run()

    def _run(self) -> TrainResult:
        opts = self.options
        self.model.to(self.device)
        if self.device.type == "cpu" and opts.keep_freed_memory:
            keep_freed_memory()
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
                        progress = (time.perf_counter() - start) / opts.time_limit if opts.time_limit else None
                        rate = self.lr_at(self.step, progress)
                        for g, scale in zip(self.optimizer.param_groups, self.lr_scales, strict=True):
                            g["lr"] = rate * scale
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


# --------------------------------------------------------------------------------------------
# Objectives: what differs per model kind
# --------------------------------------------------------------------------------------------


class Objective:
    """The model-specific part of a training run; :func:`train` calls, in order:

    ``build(device, dist)`` (after seeding torch with ``options.seed``: the module to train, on any
    device), ``optimizer(model, options)``, ``config()`` (JSON-able, stored in checkpoints and checked
    on resume), ``lr_at(options)``, then per step ``losses(ctx)`` (and ``post_backward()`` after each
    backward pass), ``sample(model, step)`` for preview grids, and finally ``finish(model, run)``,
    whose return value becomes :attr:`Run.output` (e.g. the saved model's path).
    """

    def build(self, device: torch.device, dist: DistInfo) -> nn.Module:
        raise NotImplementedError

    def optimizer(self, model: nn.Module, options: TrainOptions) -> torch.optim.Optimizer:
        """Adam over the parameters that require gradients."""
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=options.lr)

    def losses(self, ctx: StepContext) -> Mapping[str, torch.Tensor]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    def lr_at(self, options: TrainOptions) -> LrAt | None:
        return lr_schedule(options.lr, options.steps, options.lr_schedule, options.warmup_steps)

    def post_backward(self) -> None:
        """Called after each backward pass, before the optimizer step (e.g. to zero frozen gradients)."""

    def sample(self, model: nn.Module, step: int) -> Image.Image | None:
        return None

    def finish(self, model: nn.Module, run: Run) -> Any:
        return None


@dataclass
class Run:
    """What :func:`train` did: the loop's result, the trainer (device, precision) and the objective's output."""

    result: TrainResult
    trainer: Trainer
    device: torch.device
    dist: DistInfo
    started: float  # time.time() at the start
    output: Any = None

    def record(self) -> dict[str, Any]:
        """The facts of the run a trained model file carries in its ``training`` metadata."""
        result = self.result
        return {
            "steps": result.step, "stop_reason": result.stop_reason, "seconds": round(result.elapsed, 1),
            "images_per_s": round(result.images_per_s, 2),
            "final_losses": {k: round(v, 5) for k, v in result.losses.items()},
            "device": str(self.device), "precision": "fp32" if self.trainer.dtype is None else "bf16",
            "world_size": self.dist.world_size,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started + result.elapsed)),
        }


def train(objective: Objective, options: TrainOptions, checkpoint: str | os.PathLike,
          device: torch.device | None = None, dist: DistInfo | None = None) -> Run:
    """Run ``objective`` with the shared loop (in its own process group under torchrun unless
    ``device``/``dist`` are given)."""
    if device is None or dist is None:
        with distributed(options.device) as (dist, device):
            return train(objective, options, checkpoint, device, dist)
    with _own_random_state(device):
        return _train(objective, options, checkpoint, device, dist)


@contextmanager
def _own_random_state(device: torch.device) -> Iterator[None]:
    """Seeding and ``--resume`` set torch's and Python's global generators; give the caller theirs back."""
    py_state = random.getstate()
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(py_state)


def _train(objective: Objective, options: TrainOptions, checkpoint: str | os.PathLike, device: torch.device,
           dist: DistInfo) -> Run:
    torch.manual_seed(options.seed)
    model = objective.build(device, dist)
    optimizer = objective.optimizer(model, options)
    post = objective.post_backward if type(objective).post_backward is not Objective.post_backward else None
    trainer = Trainer(model, optimizer, objective.losses, options, checkpoint, sample_fn=objective.sample,
                      meta={"config": objective.config()}, post_backward=post,
                      lr_at=objective.lr_at(options), device=device, dist=dist)
    started = time.time()
    run = Run(trainer.run(), trainer, device, dist, started)
    model.eval()
    run.output = objective.finish(model, run)
    return run
