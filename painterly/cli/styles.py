"""list the styles `painterly stylize` knows (name, title, artist)

List a model's styles; --sheet writes a thumbnail sheet of all of them.
"""

from __future__ import annotations

import argparse

from ..imageio import save_image
from ..methods.stylize import list_styles, style_sheet


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model file, .onnx or .safetensors (default: the shipped multi-style model)")
    p.add_argument("--sheet", default=None, metavar="OUT.png", help="also write a thumbnail sheet")
    p.add_argument("--photo", default=None, help="photo for the sheet (default: a bundled photo)")
    p.add_argument("--size", type=int, default=256, help="thumbnail size for the sheet (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    styles = list_styles(args.model)
    width = max(len(s.name) for s in styles)
    for s in styles:
        credit = ", ".join(x for x in (s.title, s.artist) if x)
        print(f"{s.name:<{width}}  {credit}")
    if args.sheet:
        save_image(style_sheet(args.model, photo=args.photo, size=args.size), args.sheet)
        print(f"wrote {args.sheet}")
    return 0
