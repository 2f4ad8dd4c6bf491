"""train a fast feed-forward model on one or more paintings (or add styles to a model)

Train one conditional-instance-norm network on every --style jointly, or with --base add --add-style paintings to an
existing model (only their new parameters are trained; the existing styles stay bit-identical), or with --init
continue training a model. A style may be an image file, a folder of images, or a bundled painting's name. Ctrl-C
saves a checkpoint; --resume continues exactly.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import PainterlyError
from ..imageio import find_images
from ..styles import resolve_style_image
from ..training.checkpoint import default_checkpoint
from ..training.objectives.feedforward import ADD_STYLE_LR, FeedForwardConfig, train_feedforward
from ..training.options import TrainOptions
from .common import config_from_args, shipped_or_path
from .train_options import LoopDefaults, add_loop_options, add_loss_weights, loop_options, report_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    d, o = FeedForwardConfig(), TrainOptions()
    p.add_argument("--style", action="append", default=[], metavar="IMAGE", help="painting to learn (repeat)")
    p.add_argument("--base", default=None, metavar="MODEL",
                   help="existing model to add styles to ('shipped': the model painterly ships)")
    p.add_argument("--add-style", action="append", default=[], metavar="IMAGE", help="with --base: style to add")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="continue training every weight of MODEL ('shipped': the shipped one, to train it longer); "
                        "give one --style per style of the model (bundled paintings by name)")
    add_loss_weights(p, d)
    p.add_argument("--style-size", type=int, default=d.style_size,
                   help="longest side of the paintings for the style targets (default %(default)s)")
    p.add_argument("--preset", choices=("full", "medium", "slim"), default=d.preset,
                   help="network size for a new model (default %(default)s)")
    add_loop_options(p, LoopDefaults(
        steps=o.steps, batch_size=o.batch_size, lr=None, out_help="model file to write (.safetensors)",
        lr_help=f"Adam learning rate (default {o.lr:g}; {ADD_STYLE_LR:g} with --base, where only the new styles' "
        "normalization parameters train)"))


def _expand(specs: list[str]) -> list[Path]:
    out: list[Path] = []
    for spec in specs:
        path = Path(spec)
        out.extend(find_images(path) if path.is_dir() else [resolve_style_image(spec)])
    return out


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"painterly: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.init and args.base:
        raise PainterlyError("give --base (add styles) or --init (continue training), not both")
    if args.base and args.style:
        raise PainterlyError("with --base, give the new paintings with --add-style (not --style)")
    if args.add_style and not args.base:
        raise PainterlyError("--add-style needs --base MODEL (the model to add styles to)")
    styles = _expand(args.add_style if args.base else args.style)
    if not styles:
        raise PainterlyError("give at least one --style IMAGE (or --base MODEL --add-style IMAGE)")
    out = Path(args.out)
    opts = loop_options(args, lr=ADD_STYLE_LR if args.base else TrainOptions.lr)
    cfg = config_from_args(FeedForwardConfig, args)
    checkpoint = args.checkpoint or default_checkpoint(out)
    from ..methods.stylize import DEFAULT_MODEL

    base, init = (shipped_or_path(spec, DEFAULT_MODEL.name) for spec in (args.base, args.init))
    with warnings.catch_warnings():
        warnings.showwarning = _warn_one_line
        warnings.simplefilter("always", UserWarning)
        summary = train_feedforward(styles, args.data, out, cfg, opts, base=base, half=args.half,
                                    checkpoint=checkpoint, init=init)
    styles = ", ".join(s.name for s in summary.styles)
    return report_run(summary.model_path, summary.result, checkpoint, f"{len(summary.styles)} style(s) ({styles}), ")
