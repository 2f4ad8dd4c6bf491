"""train the AdaIN decoder (arbitrary styles)

Train the decoder of AdaIN arbitrary style transfer on photos and paintings, with heavy style augmentation; held-out
paintings measure generalization.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models.adain import DECODER_FILE
from ..training.checkpoint import default_checkpoint
from ..training.objectives.adain import DEFAULT_HOLD_OUT, AdaINTrainConfig, train_adain
from ..training.objectives.arbitrary import ArbitrarySummary
from .common import config_from_args, shipped_or_path
from .train_options import LoopDefaults, add_loop_options, add_loss_weights, loop_options, report_run


def add_arbitrary_options(p: argparse.ArgumentParser) -> None:
    """Options of ``train-adain`` and ``train-meta`` beyond the shared training options."""
    add_loop_options(p, LoopDefaults(steps=20_000, batch_size=8, lr=1e-4))
    p.add_argument("--style-dir", required=True, help="folder of paintings (searched recursively)")
    p.add_argument("--hold-out", nargs="*", default=list(DEFAULT_HOLD_OUT), metavar="NAME",
                   help="paintings (file stems) never trained on, to measure generalization (default: %(default)s)")
    p.add_argument("--photo-prob", type=float, default=None, help="chance a training 'style' is a photo crop")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="continue training MODEL ('shipped': the shipped one, to train it longer); "
                   "keeps its architecture and held-out paintings")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = AdaINTrainConfig()
    add_arbitrary_options(p)
    add_loss_weights(p, d, style_help="mean/std style loss weight, the paper's lambda (default %(default)s)")
    p.add_argument("--width", type=float, default=d.width, help="decoder width multiplier (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    lr_decay = 0.0 if args.lr_schedule == "constant" else AdaINTrainConfig.lr_decay
    return run_arbitrary(args, train_adain, AdaINTrainConfig, DECODER_FILE, lr_decay=lr_decay)


def run_arbitrary(args: argparse.Namespace, train: Callable[..., ArbitrarySummary], config_type: type,
                  shipped_file: str, **given: Any) -> int:
    """Run ``train-adain`` or ``train-meta``: ``train`` with a ``config_type`` from the options (``given`` on top),
    continuing ``--init`` (``shipped``: the packaged ``shipped_file``); then :func:`report`."""
    config = config_from_args(config_type, args, hold_out=tuple(args.hold_out), **given)
    summary = train(args.data, args.style_dir, args.out, config, loop_options(args), checkpoint=args.checkpoint,
                    half=args.half, init=shipped_or_path(args.init, shipped_file))
    return report(summary, args.checkpoint or default_checkpoint(args.out))


def report(summary: ArbitrarySummary, checkpoint: str | Path) -> int:
    """Print what an arbitrary-style run wrote, its evaluation and how to continue; the exit status."""
    status = report_run(summary.model_path, summary.result, checkpoint, f"{summary.result.stop_reason}, ")
    for group, losses in summary.evaluation.items():
        if losses:
            print(f"  {group}: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    return status
