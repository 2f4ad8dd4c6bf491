"""paint photos in one of the trained styles (fast; see `painterly styles`)

Stylize images with a trained feed-forward model. Repeat --style NAME=WEIGHT to mix styles (weights are normalized).
Inputs may be files or folders (searched recursively).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ImageError, PainterlyError
from ..imageio import SAVE_FORMATS, find_images, save_image
from ..methods.stylize import load_stylizer, stylize
from ..stroke_scale import check_stroke_scale
from .common import add_engine_options, add_stroke_scale_option


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file(s) or folder(s)")
    p.add_argument("--style", action="append", required=True, metavar="NAME[=W]",
                   help="style name from `painterly styles`, optionally with a mixing weight; repeat to mix")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", help="output image for a single input (.png, .jpg, .webp)")
    out.add_argument("--out-dir", help="folder for the outputs (<name>-<style>.<ext>)")
    p.add_argument("--size", type=int, default=None, help="longest side to stylize at (default: original size)")
    p.add_argument("--strength", type=float, default=1.0, help="0..1: blend with the photo (default 1)")
    p.add_argument("--preserve-color", choices=("luminance", "histogram"), default=None)
    p.add_argument("--model", default=None,
                   help="model file: .onnx (onnxruntime) or .safetensors (torch) (default: the shipped model)")
    add_engine_options(p)
    p.add_argument("--device", default=None, help="torch: cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto", help="torch only")
    add_stroke_scale_option(p)
    p.add_argument("--tile-size", type=int, default=1024, help="run larger network inputs in tiles of this size")


def parse_styles(specs: list[str], option: str = "--style", need_weight: bool = False) -> dict[str, float]:
    """``["a=0.7", "b=0.3"]`` or ``["a"]`` -> ``{name: weight}`` (a repeated name adds up); ``need_weight``:
    ``NAME=WEIGHT`` only. ``option`` names the flag in errors."""
    form = "NAME=WEIGHT" if need_weight else "NAME or NAME=WEIGHT"
    out: dict[str, float] = {}
    for spec in specs:
        name, sep, weight = spec.partition("=")
        name = name.strip()
        if not name or (need_weight and not sep):
            raise PainterlyError(f"bad {option} '{spec}': expected {form}")
        try:
            w = float(weight) if sep else 1.0
        except ValueError:
            raise PainterlyError(f"bad {option} '{spec}': weight '{weight}' is not a number") from None
        if not w >= 0 or w == float("inf"):
            raise PainterlyError(f"bad {option} '{spec}': weight must be a finite number >= 0")
        out[name] = out.get(name, 0.0) + w
    return out


def _inputs(specs: list[str]) -> list[tuple[Path, Path]]:
    """(image, path relative to its input folder) for each input."""
    items = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            items.extend((f, f.relative_to(path)) for f in find_images(path))
        elif path.exists():
            items.append((path, Path(path.name)))
        else:
            raise ImageError(f"cannot read image '{spec}': no such file")
    return items


def run(args: argparse.Namespace) -> int:
    styles = parse_styles(args.style)
    stroke_scale = check_stroke_scale(args.stroke_scale)
    model = load_stylizer(args.model, args.engine, args.quality, args.device, args.precision)
    model.style_weights(styles)  # unknown names fail before any work
    tag = "+".join(styles)
    items = _inputs(args.inputs)
    if not items:
        raise PainterlyError("no images found in the given input(s)")
    if args.output is not None:
        if len(items) != 1:
            raise PainterlyError(f"-o takes one input image, got {len(items)}; use --out-dir for several")
        if Path(args.output).suffix.lower() not in SAVE_FORMATS:
            raise PainterlyError(f"cannot write '{args.output}': unsupported extension "
                                 f"(use {', '.join(sorted(SAVE_FORMATS))})")
        targets = [Path(args.output)]
    else:
        targets = []
        for _, rel in items:
            ext = rel.suffix.lower() if rel.suffix.lower() in SAVE_FORMATS else ".png"
            targets.append(Path(args.out_dir) / rel.parent / f"{rel.stem}-{tag}{ext}")
    failed = 0
    for (src, _), dst in zip(items, targets, strict=True):
        try:
            img = stylize(src, styles, size=args.size, strength=args.strength, preserve_color=args.preserve_color,
                          model=model, tile_size=args.tile_size, stroke_scale=stroke_scale)
            save_image(img, dst)
        except ImageError as exc:
            if len(items) == 1:
                raise
            print(f"painterly: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"wrote {dst}")
    return 2 if failed else 0
