"""stylize a video (mp4, mov, webm, gif or a folder of frames), steady from frame to frame, audio kept

Stylize a video frame by frame. Each frame is blended with the previous output moved along the optical flow
(--temporal), except where the flow fails and at scene cuts. Work is kept in OUTPUT.parts/ in segments: after an
interruption, run the same command with --resume to continue.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import PainterlyError
from ..stroke_scale import check_stroke_scale
from ..video.pipeline import DEFAULT_SEGMENT_SECONDS, DEFAULT_TEMPORAL
from .common import add_stroke_scale_option
from .stylize import parse_styles


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="video file (mp4, mov, webm, gif, ...) or a folder of frames")
    p.add_argument("-o", "--output", required=True,
                   help="output video (.mp4 H.264, .mov, .webm VP9, .gif) or a folder for PNG frames")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--style", action="append", metavar="NAME[=W]",
                     help="trained style from `painterly styles`, optionally with a mixing weight; repeat to mix")
    src.add_argument("--style-image", metavar="PAINTING",
                     help="any painting (file or bundled name), by AdaIN as in `painterly transfer`")
    p.add_argument("--style-size", type=int, default=512,
                   help="with --style-image: larger paintings are downscaled to this side (default %(default)s)")
    p.add_argument("--size", type=int, default=None, help="longest side of the output (default: the input's)")
    p.add_argument("--strength", type=float, default=1.0, help="0..1: how much style (default 1)")
    add_stroke_scale_option(p)
    p.add_argument("--preserve-color", choices=("luminance", "histogram"), default=None)
    p.add_argument("--temporal", type=float, default=DEFAULT_TEMPORAL,
                   help="0..1: blending with the previous frame along the optical flow (0: off; default %(default)s)")
    p.add_argument("--interpolate", action="store_true",
                   help="paint at most every other frame and interpolate the others along the optical flow from "
                   "their painted neighbours (frames the flow cannot cover are painted): nearly twice as fast, "
                   "steadier, a little softer")
    p.add_argument("--model", default=None, help="model file (default: the shipped one)")
    p.add_argument("--engine", choices=("auto", "onnxruntime", "torch"), default=None,
                   help="inference engine (default: auto, where supported)")
    p.add_argument("--fps", type=float, default=None,
                   help="output frame rate (default: the input's; for a folder of frames: its rate, default 25)")
    p.add_argument("--start", type=float, default=0.0, help="start at this time in seconds")
    p.add_argument("--duration", type=float, default=None, help="process this many seconds")
    p.add_argument("--segment-seconds", type=float, default=DEFAULT_SEGMENT_SECONDS,
                   help="length of the resumable segments (default %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (from OUTPUT.parts/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..video import video, work_folder

    if args.style is not None and not args.style:
        raise PainterlyError("give --style NAME or --style-image PAINTING")
    styles = parse_styles(args.style) if args.style else None
    stroke_scale = check_stroke_scale(args.stroke_scale)
    try:
        result = video(args.input, args.output, styles, style_image=args.style_image, style_size=args.style_size,
                       size=args.size, stroke_scale=stroke_scale,
                       strength=args.strength, preserve_color=args.preserve_color, temporal=args.temporal,
                       interpolate=args.interpolate, model=args.model, engine=args.engine, fps=args.fps,
                       start=args.start, duration=args.duration,
                       resume=args.resume, segment_seconds=args.segment_seconds, progress=not args.quiet)
    except KeyboardInterrupt:
        if work_folder(args.output).is_dir():
            print(f"painterly: finished segments are kept in {work_folder(args.output)}; run the same command with "
                  "--resume to continue", file=sys.stderr)
        raise
    w, h = result.size
    extra = f", {result.interpolated} interpolated" if args.interpolate else ""
    extra += f", {result.resumed} segment(s) resumed" if result.resumed else ""
    print(f"wrote {result.path} ({result.frames} frames, {w}x{h}, {float(result.fps):.3g} fps, "
          f"{'audio kept' if result.audio else 'no audio'}, {result.cuts} scene cut(s){extra})")
    return 0
