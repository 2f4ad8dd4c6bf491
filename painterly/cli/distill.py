"""train a slim, faster student of a multi-style model

Distill a multi-style model into a network with fewer channels and residual blocks: the student learns to reproduce
the teacher's outputs (pixels, VGG features and Gram matrices) for every style and for mixes of two. Ctrl-C or
--time-limit saves the student and a checkpoint; --resume continues exactly.
"""

from __future__ import annotations

import argparse

from ..errors import PainterlyError
from ..models.transformer import TransformerConfig
from ..training.checkpoint import default_checkpoint
from .common import config_from_args, shipped_or_path
from .train_options import LoopDefaults, add_loop_options, add_loss_weights, loop_options, report_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..training.objectives.distill import DistillConfig

    d = DistillConfig()
    p.add_argument("--teacher", default="shipped", metavar="MODEL",
                   help="the model to distill ('shipped': the shipped multi-style model, or with --adain the shipped "
                   "decoder; default %(default)s)")
    p.add_argument("--init", default=None, metavar="STUDENT",
                   help="continue training this student file (its shape; new loss settings allowed, unlike "
                   "--resume), or 'pruned': start from the teacher pruned to --channels/--blocks (with --adain: to "
                   "--width; keeps its kernels)")
    p.add_argument("--grow", action="store_true",
                   help="with --init STUDENT: first widen and deepen it to --channels/--blocks, keeping its outputs "
                   "(new channels and blocks start with no effect), for a student that has stopped improving")
    p.add_argument("--adain", action="store_true",
                   help="distill an AdaIN decoder into a narrower one (photos and --style-dir paintings drawn as in "
                   "its training, same held-out paintings)")
    p.add_argument("--style-dir", default=None, help="with --adain: folder of paintings")
    p.add_argument("--width", type=float, default=0.25, help="with --adain: the student's width (default %(default)s)")
    p.add_argument("--student-preset", choices=("slim", "medium", "full"), default=None,
                   help="student shape preset (default: --channels and --blocks)")
    p.add_argument("--channels", type=int, nargs=3, default=d.student["channels"], metavar=("C1", "C2", "C3"),
                   help="student widths at full, 1/2 and 1/4 resolution (default %(default)s)")
    p.add_argument("--blocks", type=int, default=d.student["num_residual"],
                   help="student residual blocks (default %(default)s)")
    p.add_argument("--stem-kernel", type=int, default=d.student["stem_kernel"],
                   help="student's first and last conv kernel (default %(default)s)")
    p.add_argument("--alpha", type=float, default=None, help="width multiplier on the student's channels")
    p.add_argument("--pixel-weight", type=float, default=d.pixel_weight, help="default %(default)s")
    add_loss_weights(p, d, content_help="VGG feature match to the teacher's output (default %(default)s)",
                     style_help="Gram match to the teacher's output (default %(default)s)")
    p.add_argument("--task-weight", type=float, default=d.task_weight,
                   help="weight of the teacher's own training loss (content vs the photo, Gram vs its bundled "
                   "paintings) on one-style samples; with --adain the AdaIN loss against the painting (default "
                   "%(default)s: off)")
    p.add_argument("--task-style-scale", type=float, default=d.task_style_scale,
                   help="factor on the teacher's style weight inside --task-weight's loss: above 1 trades "
                   "content for style (default %(default)s)")
    p.add_argument("--style-boost", action="append", default=None, metavar="NAME=W",
                   help="draw this style W times as often as the others (repeatable; for a student that lags "
                   "the teacher on a few styles)")
    p.add_argument("--mix-prob", type=float, default=d.mix_prob,
                   help="chance a sample uses a mix of two styles (default %(default)s)")
    add_loop_options(p, LoopDefaults(steps=100_000, batch_size=4, lr=1e-3, out_help="student model to write "
                                     "(.safetensors)"))


def run(args: argparse.Namespace) -> int:
    from ..methods.stylize import DEFAULT_MODEL
    from ..training.objectives.distill import DistillConfig, distill
    from .stylize import parse_styles

    if args.adain:
        if args.style_boost:
            raise PainterlyError("--style-boost is for multi-style students (an AdaIN decoder has no styles)")
        return _run_adain(args)
    if args.student_preset:
        student = {"preset": args.student_preset}
    else:
        student = {"channels": list(args.channels), "num_residual": args.blocks, "stem_kernel": args.stem_kernel}
    if args.alpha is not None:
        student["alpha"] = args.alpha
    try:
        TransformerConfig.from_dict({k: v for k, v in student.items() if k != "preset"})
    except ValueError as exc:
        raise PainterlyError(f"bad student shape: {exc}") from None
    boost = parse_styles(args.style_boost or [], "--style-boost", need_weight=True)
    config = config_from_args(DistillConfig, args, student=student, style_boost=boost)
    options = loop_options(args)
    run_ = distill(shipped_or_path(args.teacher, DEFAULT_MODEL.name), args.data, args.out, config, options,
                   checkpoint=args.checkpoint, half=args.half, init=args.init, grow=args.grow)
    return report_run(run_.output, run_.result, args.checkpoint or default_checkpoint(args.out))

def _run_adain(args: argparse.Namespace) -> int:
    from ..models.adain import DECODER_FILE
    from ..training.objectives.distill import DistillConfig
    from ..training.objectives.distill_adain import distill_adain
    from .train_adain import report

    if args.task_style_scale != DistillConfig().task_style_scale:
        raise PainterlyError("--task-style-scale is for multi-style students (with --adain, set --style-weight)")
    if args.grow:
        raise PainterlyError("--grow widens a multi-style student; an AdaIN student continues with --init STUDENT")
    if not args.style_dir:
        raise PainterlyError("--adain needs --style-dir (the paintings the decoder was trained on)")
    if not 0 < args.width <= 1:
        raise PainterlyError(f"--width must be in (0, 1], got {args.width}")
    config = DistillConfig(student={"width": args.width}, pixel_weight=args.pixel_weight,
                           content_weight=args.content_weight, style_weight=args.style_weight,
                           task_weight=args.task_weight)
    pruned = args.init == "pruned"
    summary = distill_adain(shipped_or_path(args.teacher, DECODER_FILE), args.data, args.style_dir, args.out, config,
                            loop_options(args), checkpoint=args.checkpoint, half=args.half, pruned=pruned,
                            student=None if pruned or not args.init else args.init)
    return report(summary, args.checkpoint or default_checkpoint(args.out))
