"""`painterly train-adain`: train the AdaIN decoder for arbitrary style transfer."""

from __future__ import annotations

import argparse

from ..models.adain import DECODER_FILE
from ..training.adain import DEFAULT_HOLD_OUT, AdaINTrainConfig, train_adain
from ..training.checkpoint import default_checkpoint
from .common import shipped_or_path
from .train_options import LoopDefaults, add_loop_options, loop_options, report_run


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


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = AdaINTrainConfig()
    p = sub.add_parser("train-adain", help="train the AdaIN decoder (arbitrary styles)",
                       description="Train the decoder of AdaIN arbitrary style transfer on photos and paintings, "
                       "with heavy style augmentation; held-out paintings measure generalization.")
    add_arbitrary_options(p)
    p.add_argument("--content-weight", type=float, default=d.content_weight)
    p.add_argument("--style-weight", type=float, default=d.style_weight,
                   help="mean/std style loss weight, the paper's lambda (default %(default)s)")
    p.add_argument("--width", type=float, default=d.width, help="decoder width multiplier (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    d = AdaINTrainConfig()
    config = AdaINTrainConfig(content_weight=args.content_weight, style_weight=args.style_weight, width=args.width,
                              hold_out=tuple(args.hold_out),
                              lr_decay=0.0 if args.lr_schedule == "constant" else d.lr_decay,
                              photo_prob=d.photo_prob if args.photo_prob is None else args.photo_prob)
    summary = train_adain(args.data, args.style_dir, args.out, config, loop_options(args),
                          checkpoint=args.checkpoint, half=args.half, init=shipped_or_path(args.init, DECODER_FILE))
    return report(summary, args.checkpoint or default_checkpoint(args.out))


def report(summary, checkpoint) -> int:
    """Print what an arbitrary-style run wrote, its evaluation and how to continue; the exit status."""
    status = report_run(summary.model_path, summary.result, checkpoint, f"{summary.result.stop_reason}, ")
    for group, losses in summary.evaluation.items():
        if losses:
            print(f"  {group}: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    return status
