"""train the meta network that turns a painting into a transformer

Train a meta network mapping a painting's VGG statistics to the weights of a compact transformer network; held-out
paintings measure generalization.
"""

from __future__ import annotations

import argparse

from ..models.meta import META_FILE
from ..training.objectives.meta import MetaTrainConfig, train_meta
from .train_adain import add_arbitrary_options, run_arbitrary
from .train_options import add_loss_weights


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = MetaTrainConfig()
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
    add_loss_weights(p, d)


def run(args: argparse.Namespace) -> int:
    return run_arbitrary(args, train_meta, MetaTrainConfig, META_FILE)
