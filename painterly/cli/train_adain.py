"""`painterly train-adain`: train the AdaIN decoder for arbitrary style transfer."""

from __future__ import annotations

import argparse

from ..models.adain import DECODER_FILE
from ..training.adain import DEFAULT_HOLD_OUT, AdaINTrainConfig, options_with_outputs, train_adain
from ..training.common import LR_SCHEDULES, TrainOptions
from .common import shipped_or_path


def add_common_arguments(p: argparse.ArgumentParser, lr: float, batch_size: int) -> None:
    """Options shared by ``train-adain`` and ``train-meta``."""
    p.add_argument("--content-dir", required=True, help="folder of photos (searched recursively)")
    p.add_argument("--style-dir", required=True, help="folder of paintings (searched recursively)")
    p.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    p.add_argument("--steps", type=int, default=20_000, help="training steps (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="default %(default)s")
    p.add_argument("--size", type=int, default=256, help="crop size in pixels (default %(default)s)")
    p.add_argument("--lr", type=float, default=lr, help="Adam learning rate (default %(default)s)")
    p.add_argument("--hold-out", nargs="*", default=list(DEFAULT_HOLD_OUT), metavar="NAME",
                   help="paintings (file stems) never trained on, to measure generalization (default: %(default)s)")
    p.add_argument("--photo-prob", type=float, default=None, help="chance a training 'style' is a photo crop")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="continue training MODEL ('shipped': the shipped one, to train it longer); "
                   "keeps its architecture and held-out paintings")
    p.add_argument("--lr-schedule", choices=("default", *LR_SCHEDULES), default="default",
                   help="learning rate over the run (default: the trainer's own; cosine decays to 0 at --steps, "
                   "cosine-time at --time-limit)")
    p.add_argument("--warmup-steps", type=int, default=0, metavar="N",
                   help="linear learning-rate warm-up (useful with --init)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --out")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default: <out>.ckpt.safetensors)")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N")
    p.add_argument("--sample-every", type=int, default=0, metavar="N", help="write preview grids every N steps")
    p.add_argument("--log-every", type=int, default=10, metavar="N")
    p.add_argument("--log", default=None, help="CSV log (default: <out>.log.csv)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop cleanly after S seconds")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--half", action="store_true", help="store the weights as fp16")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    opts = TrainOptions(steps=args.steps, batch_size=args.batch_size, size=args.size, lr=args.lr, seed=args.seed,
                        device=args.device, fp32=args.fp32, checkpoint_every=args.checkpoint_every,
                        sample_every=args.sample_every, log_every=args.log_every, time_limit=args.time_limit,
                        log_csv=args.log, resume=args.resume, progress=not args.quiet,
                        lr_schedule="constant" if args.lr_schedule == "default" else args.lr_schedule,
                        warmup_steps=args.warmup_steps)
    return options_with_outputs(opts, args.out)


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = AdaINTrainConfig()
    p = sub.add_parser("train-adain", help="train the AdaIN decoder (arbitrary styles)",
                       description="Train the decoder of AdaIN arbitrary style transfer on photos and paintings, "
                       "with heavy style augmentation; held-out paintings measure generalization.")
    add_common_arguments(p, lr=1e-4, batch_size=8)
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
    summary = train_adain(args.content_dir, args.style_dir, args.out, config, options_from_args(args),
                          checkpoint=args.checkpoint, half=args.half, init=shipped_or_path(args.init, DECODER_FILE))
    report(summary)
    return 0


def report(summary) -> None:
    r = summary.result
    if summary.model_path:
        print(f"wrote {summary.model_path}: {r.step} steps ({r.stop_reason}), {r.elapsed:.0f} s, "
              f"{r.images_per_s:.1f} images/s")
        for group, losses in summary.evaluation.items():
            if losses:
                print(f"  {group}: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))
