#!/usr/bin/env python
"""Where the time of `painterly video` goes: each stage of the pipeline timed on its own, one frame after the
other, on a synthetic pan (the stages of the threaded pipeline overlap, so this is a breakdown of the work, not
of the wall time).

    python benchmarks/profile_video.py                      # 854x480, 48 frames, the default model and engine
    python benchmarks/profile_video.py --size 320x180 --threads 2 --no-keep-memory

Stages: decode (PyAV, to RGB at the working size), flow (DIS both ways, the forward-backward check, the blend
weights), model (the painter: the model ``painterly.stylize`` picks), blend (warp the previous output, mix),
encode (H.264). Per stage: wall ms/frame and its share; plus the process's CPU time and minor page faults per
frame. Prints a markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from bench_video import parse_size
from common import machine, machine_line, markdown_table

from painterly.engines.threads import limited
from painterly.malloc import keep_freed_memory
from painterly.video import clips
from painterly.video.flow import opencv_threads
from painterly.video.io import FrameSource, SegmentWriter
from painterly.video.painter import style_painter
from painterly.video.temporal import TemporalBlender

STAGES = ("decode", "flow", "model", "blend", "encode")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="854x480", help="clip size WxH (default %(default)s)")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--style", default="starry-night")
    p.add_argument("--engine", default=None)
    p.add_argument("--threads", type=int, default=1, help="model threads (default 1, as the pipeline on 2 cores)")
    p.add_argument("--no-keep-memory", action="store_true", help="leave glibc's allocator at its defaults")
    args = p.parse_args(argv)
    width, height = parse_size(args.size)
    if not args.no_keep_memory:
        keep_freed_memory()
    with tempfile.TemporaryDirectory(prefix="profile_video.") as tmp:
        clip = clips.write_clip(Path(tmp) / "pan.mp4", clips.pan("lake.jpg", args.frames, width, height), 24)
        with limited(args.threads) as apply_to_torch, opencv_threads(1):
            t0 = time.perf_counter()
            paint = style_painter(args.style, engine=args.engine)
            apply_to_torch()
            load_s = time.perf_counter() - t0
            times, n, usage = _run(clip, paint, Path(tmp) / "out.mp4")
    total = sum(times.values())
    rows = [[k, 1000 * times[k] / n, 100 * times[k] / total] for k in STAGES]
    rows.append(["all", 1000 * total / n, 100.0])
    print(f"# Stages of `painterly video` ({width}x{height}, {n} frames, model threads {args.threads}, "
          f"keep freed memory {'off' if args.no_keep_memory else 'on'})\n\n{machine_line(machine())}\n")
    print(markdown_table(["stage", "ms/frame", "%"], rows))
    print(f"\nmodel loading {load_s:.2f} s; CPU {usage[0] / n:.3f} s/frame (user) + {usage[1] / n:.3f} s/frame "
          f"(system); {usage[2] / n:.0f} minor page faults/frame")
    return 0


def _run(clip: Path, paint, out: Path) -> tuple[dict[str, float], int, tuple[float, float, float]]:
    src = FrameSource(clip)
    size = (src.info.width, src.info.height)
    blender = TemporalBlender(0.6)
    writer = SegmentWriter(out, "mp4", size, src.info.fps, 0)
    frames = src.frames(Fraction(0), src.info.fps, size)
    times = dict.fromkeys(STAGES, 0.0)
    prev, n = None, 0
    r0 = resource.getrusage(resource.RUSAGE_SELF)

    def timed(stage: str, fn, *a):
        t = time.perf_counter()
        value = fn(*a)
        times[stage] += time.perf_counter() - t
        return value

    while (frame := timed("decode", next, frames, None)) is not None:
        motion = timed("flow", blender.motion, prev, frame)
        styled = timed("model", paint, frame)
        result = timed("blend", blender.blend, frame, styled, motion)
        timed("encode", writer.write, result)
        prev, n = frame, n + 1
    timed("encode", writer.close)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return times, n, (r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt)


if __name__ == "__main__":
    sys.exit(main())
