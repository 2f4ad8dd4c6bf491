"""`painterly train-meta`: train the meta network (Shen et al. 2018) for arbitrary style transfer."""

from __future__ import annotations

import argparse

from ..models.meta import META_FILE
from ..training.checkpoint import default_checkpoint
from ..training.meta import MetaTrainConfig, train_meta
from .common import shipped_or_path
from .train_adain import add_arbitrary_options, report
from .train_options import loop_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = MetaTrainConfig()
    p = sub.add_parser("train-meta", help="train the meta network that turns a painting into a transformer",
                       description="Train a meta network mapping a painting's VGG statistics to the weights of a "
                       "compact transformer network; held-out paintings measure generalization.")
    add_arbitrary_options(p)
    p.add_argument("--styles-per-step", type=int, default=d.styles_per_step,
                   help="styles per batch; the batch is split between them (default %(default)s)")
    p.add_argument("--transformer", choices=("slim", "medium", "full"), default=d.transformer,
                   help="preset of the generated network (default %(default)s)")
    p.add_argument("--output", choices=("clamp", "sigmoid"), default=d.output,
                   help="output of the generated network (default %(default)s: no saturated blobs; "
                   "continuing a sigmoid network with --init converts it)")
    p.add_argument("--upsample", choices=("bilinear", "nearest"), default=d.upsample,
                   help="2x upsampling of the generated network (default %(default)s: no 4-pixel lattice; "
                   "continuing a nearest network with --init switches it)")
    p.add_argument("--widen", type=int, default=d.widen,
                   help="with --init: make the generated network this many times wider first, computing the same "
                   "function (Net2Net), to continue with more capacity (default %(default)s)")
    p.add_argument("--group-hidden", type=int, default=d.group_hidden, help="hidden units per layer group")
    p.add_argument("--base-lr-scale", type=float, default=d.base_lr_scale,
                   help="learning-rate multiplier of the shared base network (default %(default)s)")
    p.add_argument("--content-weight", type=float, default=d.content_weight)
    p.add_argument("--style-weight", type=float, default=d.style_weight)
    p.add_argument("--tv-weight", type=float, default=d.tv_weight)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    d = MetaTrainConfig()
    config = MetaTrainConfig(content_weight=args.content_weight, style_weight=args.style_weight,
                             tv_weight=args.tv_weight, transformer=args.transformer, output=args.output,
                             upsample=args.upsample, widen=args.widen,
                             group_hidden=args.group_hidden,
                             styles_per_step=args.styles_per_step, hold_out=tuple(args.hold_out),
                             base_lr_scale=args.base_lr_scale,
                             photo_prob=d.photo_prob if args.photo_prob is None else args.photo_prob)
    summary = train_meta(args.data, args.style_dir, args.out, config, loop_options(args),
                         checkpoint=args.checkpoint, half=args.half, init=shipped_or_path(args.init, META_FILE))
    return report(summary, args.checkpoint or default_checkpoint(args.out))
