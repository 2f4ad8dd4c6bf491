"""Loop settings shared by every trainer (:class:`TrainOptions`), learning-rate schedules and the result
of a run (:class:`TrainResult`)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import PainterlyError

#: a file or folder
PathLike = str | os.PathLike
#: a file or folder, or a list of them (photos, paintings)
Paths = PathLike | Sequence[PathLike]


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
    #: learning-rate schedule: "constant", "cosine" (to 0 at ``steps``) or "cosine-time" (to 0 at
    #: ``time_limit`` seconds, whatever the hardware's speed), after a linear warm-up over
    #: ``warmup_steps`` (useful when continuing a trained model)
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    #: on CPU, keep freed blocks in glibc's heap (:func:`painterly.runtime.keep_freed_memory`, ~15% faster
    #: steps); a process-wide setting, so off for library calls and on in the CLI
    keep_freed_memory: bool = False

    def run_config(self) -> dict[str, Any]:
        """The settings a trained model's config records (with its loss and model settings)."""
        return {"batch_size": self.batch_size, "size": self.size, "lr": self.lr, "lr_schedule": self.lr_schedule,
                "warmup_steps": self.warmup_steps, "seed": self.seed}

    def check_size(self, multiple: int, network: str = "") -> None:
        """Refuse a crop ``size`` that ``network`` cannot take (its down/upsampling needs a ``multiple``)."""
        if self.size % multiple:
            where = f" for {network}" if network else ""
            raise PainterlyError(f"--size must be a multiple of {multiple}{where}, got {self.size}")


LR_SCHEDULES = ("constant", "cosine", "cosine-time")
#: ``(step, progress) -> learning rate``; ``progress`` is the fraction of the time limit spent (or None)
LrAt = Callable[[int, "float | None"], float]


def lr_schedule(lr: float, steps: int, kind: str = "constant", warmup: int = 0) -> LrAt | None:
    """``(step, progress) -> learning rate``: linear warm-up over ``warmup`` steps, then constant or
    cosine to 0. "cosine" decays over ``steps``; "cosine-time" over ``progress``, the fraction of the
    time limit spent (the trainer passes it), so a run ends at rate 0 when its time is up whatever
    the hardware's speed. ``None`` for a plain constant rate."""
    if kind not in LR_SCHEDULES:
        raise PainterlyError(f"unknown learning-rate schedule {kind!r}; choose {', '.join(LR_SCHEDULES)}")
    if kind == "constant" and warmup <= 0:
        return None

    def at(step: int, progress: float | None = None) -> float:
        scale = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        if kind == "cosine-time":
            if progress is None:
                raise PainterlyError("the cosine-time learning-rate schedule needs a time limit")
            frac = min(max(progress, 0.0), 1.0)
        elif kind == "cosine":
            frac = min(step, steps) / max(steps, 1)
        else:
            frac = 0.0
        return lr * scale * 0.5 * (1.0 + math.cos(math.pi * frac))

    return at


@dataclass
class TrainResult:
    step: int  # steps completed in total (including resumed ones)
    stop_reason: str  # "done" | "time_limit" | "interrupted"
    elapsed: float  # seconds spent in this run
    images_per_s: float
    losses: dict[str, float] = field(default_factory=dict)  # last logged (all-rank mean)
    checkpoint: str | None = None
