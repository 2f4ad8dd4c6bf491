"""stylize with any painting in about a second (AdaIN or meta network, no training)

Arbitrary style transfer: the painting is given at run time. A --style may be a file or the name of a bundled
painting. With --mask, white gets the first style and black the last (one style: black keeps the photo).
"""

from __future__ import annotations

import argparse

from ..errors import PainterlyError
from ..imageio import save_image
from ..methods.transfer import METHODS, generate_transformer, transfer
from ..stroke_scale import check_stroke_scale
from ..styles import style_name
from .common import add_engine_options, add_stroke_scale_option, check_output, check_style_mix


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", help="photo to stylize")
    p.add_argument("--style", action="append", required=True, metavar="STYLE",
                   help="style painting (file or bundled name); repeat to mix several or to fill mask regions")
    p.add_argument("--style-mix", type=float, nargs="+", metavar="W", help="mixing weight of each style (normalized)")
    p.add_argument("--alpha", type=float, default=1.0, help="0..1: content/style trade-off (default 1: full style)")
    p.add_argument("--mask", default=None, help="grayscale region mask of the photo's size, one style per region")
    p.add_argument("--preserve-color", choices=("luminance", "histogram"), default=None)
    p.add_argument("--size", type=int, default=None,
                   help="longest side of the output in pixels (default: the photo's, at most 1024)")
    add_stroke_scale_option(p)
    p.add_argument("--style-size", type=int, default=512,
                   help="larger paintings are downscaled to this longest side (default %(default)s)")
    p.add_argument("--method", choices=METHODS, default="adain", help="default %(default)s")
    p.add_argument("--model", default=None,
                   help="decoder (adain: .onnx or .safetensors) or meta-network (meta) weights file "
                        "(default: the shipped one)")
    p.add_argument("--save-model", default=None, metavar="MODEL.safetensors",
                   help="meta only: also save the generated network as a single-style model for `painterly stylize "
                        "--model`")
    add_engine_options(p)
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto", help="torch only")
    p.add_argument("--device", default=None, help="torch: cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")


def run(args: argparse.Namespace) -> int:
    out = check_output(args.output)
    check_style_mix(args.style_mix, args.style)
    stroke_scale = check_stroke_scale(args.stroke_scale)
    if args.save_model is not None:
        if args.method != "meta":
            raise PainterlyError("--save-model needs --method meta")
        if len(args.style) != 1:
            raise PainterlyError("--save-model saves the network of one style; give exactly one --style")
    img = transfer(args.content, args.style, alpha=args.alpha, style_weights=args.style_mix, mask=args.mask,
                   preserve_color=args.preserve_color, size=args.size, method=args.method,
                   style_size=args.style_size, model=args.model, device=args.device, precision=args.precision,
                   engine=args.engine, quality=args.quality, stroke_scale=stroke_scale)
    save_image(img, out)
    print(f"wrote {out}")
    if args.save_model is not None:
        from ..models.meta import save_generated

        net = generate_transformer(args.style[0], args.model, args.style_size)
        path = save_generated(net, args.save_model, style_name(args.style[0]), source=str(args.style[0]))
        print(f"wrote {path} (use: painterly stylize PHOTO --model {path} --style {style_name(args.style[0])})")
    return 0
