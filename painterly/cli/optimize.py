"""stylize by optimizing the image itself (slow, reference quality)

Optimize an image so its VGG features match CONTENT and its Gram matrices match the style(s). A --style may be a
file or the name of a bundled painting (see `painterly paintings`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PainterlyError
from ..imageio import save_image
from ..methods.optimize import OptimizeConfig, optimize
from ..paintings import bundled_painting
from .common import check_output, check_style_mix, config_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = OptimizeConfig()
    p.add_argument("content", help="photo to stylize")
    p.add_argument("--style", action="append", required=True, metavar="STYLE",
                   help="style painting (file or bundled name); repeat to mix several")
    p.add_argument("--style-mix", type=float, nargs="+", metavar="W", help="each style's share of the style target")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    p.add_argument("--size", type=int, default=d.size, help=f"longest side of the output in pixels (default {d.size})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"iterations at each scale (default {d.steps})")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d.optimizer)
    p.add_argument("--lr", type=float, default=None, help="step size (default 1.0 L-BFGS, 0.02 Adam)")
    p.add_argument("--init", choices=("content", "noise", "style"), default=d.init)
    p.add_argument("--scales", type=int, default=d.scales, help="coarse-to-fine levels (default %(default)s)")
    p.add_argument("--style-scale", type=float, default=d.style_scale,
                   help="style image size relative to the output (default %(default)s)")
    p.add_argument("--preserve-color", choices=("luminance", "histogram"), default=None)
    p.add_argument("--content-weight", type=float, default=d.content_weight)
    p.add_argument("--style-weight", type=float, default=d.style_weight)
    p.add_argument("--tv-weight", type=float, default=d.tv_weight)
    p.add_argument("--pooling", choices=("max", "avg"), default=d.pooling)
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=d.precision)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="write intermediate images every N steps")
    p.add_argument("--save-dir", default=None, help="folder for intermediate images (default: next to OUTPUT)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, help="refuse larger input images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def style_source(value: str) -> str | Path:
    """A style given on the command line: an existing file, else the name of a bundled painting."""
    path = Path(value)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return value  # a file (a missing one gets a clear error when it is read)
    return bundled_painting(value)


def run(args: argparse.Namespace) -> int:
    out = check_output(args.output)
    check_style_mix(args.style_mix, args.style)
    styles = [style_source(s) for s in args.style]
    save_dir = args.save_dir or (str(out.with_name(out.stem + "_steps")) if args.save_every else None)
    config = config_from_args(OptimizeConfig, args, save_dir=save_dir, progress=not args.quiet)
    try:
        img = optimize(args.content, styles, style_weights=args.style_mix, config=config)
    except (ValueError, FloatingPointError) as exc:
        raise PainterlyError(str(exc)) from None
    save_image(img, out)
    print(f"wrote {out}")
    return 0
