"""Command-line options shared by every training command (train, train-adain, train-meta, distill).

One spelling per option; the spellings older commands used stay as aliases (``--content-dir`` for
``--data``, ``--log`` for ``--log-csv``). :func:`add_loop_options` adds them, :func:`loop_options`
turns the parsed arguments into :class:`TrainOptions` (CSV log and samples next to ``--out`` unless
given), :func:`check_loop_args` refuses impossible values with one line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PainterlyError
from ..training.options import LR_SCHEDULES, TrainOptions, TrainResult

#: ``--lr-schedule default``: the trainer's own schedule (constant, or the AdaIN paper's decay)
DEFAULT_SCHEDULE = "default"


@dataclass(frozen=True)
class LoopDefaults:
    """Per-command defaults of the shared options."""

    steps: int = 20_000
    batch_size: int = 8
    lr: float | None = 1e-4  # None: the command picks (help text in ``lr_help``)
    lr_help: str = ""
    data_help: str = "folder of photos (searched recursively)"
    out_help: str = "weights file to write (.safetensors)"


def add_loop_options(p: argparse.ArgumentParser, d: LoopDefaults = LoopDefaults()) -> None:
    """Data, output, schedule, checkpoint, logging and device options."""
    p.add_argument("--data", "--content-dir", dest="data", required=True, metavar="DIR", help=d.data_help)
    p.add_argument("--out", required=True, help=d.out_help)
    p.add_argument("--steps", type=int, default=d.steps, help="training steps (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default %(default)s")
    p.add_argument("--size", type=int, default=TrainOptions.size, help="crop size in pixels (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help=d.lr_help or "Adam learning rate (default %(default)s)")
    p.add_argument("--lr-schedule", choices=(DEFAULT_SCHEDULE, *LR_SCHEDULES), default=DEFAULT_SCHEDULE,
                   help="learning rate over the run: the trainer's own (default), constant, cosine (decay to 0 at "
                   "--steps) or cosine-time (decay to 0 at --time-limit)")
    p.add_argument("--warmup-steps", type=int, default=0, metavar="N",
                   help="linear learning-rate warm-up over N steps (useful with --init)")
    p.add_argument("--resume", action="store_true", help="continue exactly from the checkpoint")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default: <out>.ckpt.safetensors)")
    p.add_argument("--checkpoint-every", type=int, default=TrainOptions.checkpoint_every, metavar="N",
                   help="default %(default)s")
    p.add_argument("--sample-every", type=int, default=0, metavar="N", help="write preview grids every N steps")
    p.add_argument("--log-every", type=int, default=TrainOptions.log_every, metavar="N", help="default %(default)s")
    p.add_argument("--log-csv", "--log", dest="log_csv", default=None, metavar="FILE",
                   help="CSV log (default: <out>.log.csv)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop cleanly after S seconds")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    p.add_argument("--seed", type=int, default=TrainOptions.seed)
    p.add_argument("--half", action="store_true", help="store the weights as fp16")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_loss_weights(p: argparse.ArgumentParser, d: Any, content_help: str = "default %(default)s",
                     style_help: str = "default %(default)s") -> None:
    """``--content-weight``, ``--style-weight`` and, where the config ``d`` has one, ``--tv-weight`` (defaults
    from ``d``)."""
    p.add_argument("--content-weight", type=float, default=d.content_weight, help=content_help)
    p.add_argument("--style-weight", type=float, default=d.style_weight, help=style_help)
    if hasattr(d, "tv_weight"):
        p.add_argument("--tv-weight", type=float, default=d.tv_weight, help="default %(default)s")


def check_loop_args(args: argparse.Namespace) -> None:
    if Path(args.out).suffix != ".safetensors":
        raise PainterlyError(f"--out must be a .safetensors file, got '{args.out}'")
    for name, value in (("steps", args.steps), ("batch-size", args.batch_size), ("size", args.size)):
        if value < 1:
            raise PainterlyError(f"--{name} must be positive, got {value}")
    if args.warmup_steps < 0:
        raise PainterlyError(f"--warmup-steps must be >= 0, got {args.warmup_steps}")


def output_stem(out: str | Path) -> str:
    """``runs/m.safetensors`` -> ``runs/m`` (the prefix of the log, checkpoint and samples next to it)."""
    out = Path(out)
    return str(out.with_name(out.name.removesuffix(".safetensors")))


def loop_options(args: argparse.Namespace, lr: float | None = None, default_schedule: str = "constant") -> TrainOptions:
    """:class:`TrainOptions` from the shared options (``lr`` when ``--lr`` was not given)."""
    check_loop_args(args)
    stem = output_stem(args.out)
    schedule = default_schedule if args.lr_schedule == DEFAULT_SCHEDULE else args.lr_schedule
    return TrainOptions(
        steps=args.steps, batch_size=args.batch_size, size=args.size,
        lr=args.lr if args.lr is not None else (lr if lr is not None else TrainOptions.lr),
        seed=args.seed, device=args.device, fp32=args.fp32, checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every, log_every=args.log_every, time_limit=args.time_limit,
        log_csv=args.log_csv or stem + ".log.csv", samples_dir=stem + "-samples", resume=args.resume,
        progress=not args.quiet, lr_schedule=schedule, warmup_steps=args.warmup_steps, keep_freed_memory=True,
    )


def report_run(written: str | None, result: TrainResult, checkpoint: str | Path, what: str = "") -> int:
    """Print what a training command wrote (``what``: e.g. its styles) and how to continue; the exit status."""
    if written is None:  # not rank 0
        return 0
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    print(f"wrote {written}: {what}step {result.step}, {result.elapsed:.0f} s, {result.images_per_s:.1f} images/s; "
          f"{losses}")
    if result.stop_reason == "interrupted":
        print(f"painterly: interrupted at step {result.step}; checkpoint saved to {checkpoint} "
              "(continue with the same command plus --resume)", file=sys.stderr)
        return 130
    if result.stop_reason == "time_limit":
        print(f"stopped at the time limit; checkpoint {checkpoint} (continue with --resume and a new --time-limit)")
    return 0
