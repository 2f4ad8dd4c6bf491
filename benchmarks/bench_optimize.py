#!/usr/bin/env python
"""Benchmark ``painterly optimize`` against the ``pastiche`` CLI (Gatys et al., L-BFGS).

Both tools run as separate processes on the same content/style pair at the same output size
(longest side), each timed from spawn to exit (start-up and weight loading included) with its
own peak resident memory. Both outputs are then scored with the SAME loss: painterly's
PerceptualLoss at the ``painterly optimize`` defaults, in fp32, at the benchmark size.

pastiche runs ``--num-steps N`` L-BFGS steps (one loss/gradient evaluation each, N = 300 by
default) with its own defaults for everything else, except ``--size`` (longest side of the
output) and ``--style-size`` (longest side of the style image), which are set to the sizes the
score uses so both tools are judged against the style statistics they optimized for.
painterly runs with its defaults plus ``--size``, ``--painterly-steps`` and ``--painterly-args``.

    python benchmarks/bench_optimize.py                  # full run: 512 px, pastiche 300 steps
    python benchmarks/bench_optimize.py --quick          # smoke test: 128 px, 10 steps each
    python benchmarks/bench_optimize.py --reuse-pastiche --painterly-args "--scales 3 --steps 100"

Writes results/optimize.json and results/optimize.md (results/optimize.quick.* with --quick),
and the two output images next to them (full runs only).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RESULTS,
    ROOT,
    machine,
    markdown_table,
    perceptual_score,
    run_measured,
    tail,
    write_results,
)

ASSETS = ROOT / "painterly" / "assets"
DEFAULT_CONTENT = ASSETS / "photos" / "lake.jpg"
DEFAULT_STYLE = ASSETS / "styles" / "starry-night.jpg"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: small size and few steps")
    p.add_argument("--size", type=int, help="longest side of the output in pixels (default 512; quick: 128)")
    p.add_argument("--steps", type=int, help="pastiche L-BFGS steps (default 300; quick: 10)")
    p.add_argument("--painterly-steps", type=int,
                   help="painterly --steps (default: painterly's own default; quick: 10)")
    p.add_argument("--painterly-args", default="", help='extra flags for painterly optimize, e.g. "--scales 3"')
    p.add_argument("--pastiche-args", default="", help="extra flags for pastiche")
    p.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    p.add_argument("--reuse-pastiche", action="store_true",
                   help="reuse pastiche's numbers and image from the last result file if its command was identical")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where the result files go")
    args = p.parse_args(argv)
    args.size = args.size or (128 if args.quick else 512)
    args.steps = args.steps or (10 if args.quick else 300)
    if args.painterly_steps is None and args.quick and "--steps" not in args.painterly_args:
        args.painterly_steps = 10
    return args


def pastiche_command(args: argparse.Namespace, output: Path, style_size: int) -> list[str]:
    return [sys.executable, "-m", "pastiche", "--content", str(args.content), "--styles", str(args.style),
            "--output", str(output), "--size", str(args.size), "--style-size", str(style_size),
            "--num-steps", str(args.steps), "--seed", "0", "--device", "cpu", "--info-step", "50",
            *shlex.split(args.pastiche_args)]


def painterly_command(args: argparse.Namespace, output: Path) -> list[str]:
    cmd = [sys.executable, "-m", "painterly", "optimize", str(args.content), "--style", str(args.style),
           "-o", str(output), "--size", str(args.size)]
    if args.painterly_steps is not None:
        cmd += ["--steps", str(args.painterly_steps)]
    return cmd + shlex.split(args.painterly_args)


def _comparable(cmd: str) -> str:
    """A command line without the interpreter, for --reuse-pastiche matching."""
    return " ".join(cmd.split()[1:])


def previous_pastiche(json_path: Path, command: list[str]) -> dict | None:
    try:
        old = json.loads(json_path.read_text())["runs"]["pastiche"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _comparable(old.get("command", "")) != _comparable(shlex.join(command)) or not Path(old["output"]).is_file():
        return None
    return old


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from painterly.methods.optimize import OptimizeConfig

    style_size = max(16, round(args.size * OptimizeConfig().style_scale))
    stem = "optimize.quick" if args.quick else "optimize"
    work = Path(tempfile.mkdtemp(prefix="bench_optimize_"))
    images = work if args.quick else args.out_dir
    images.mkdir(parents=True, exist_ok=True)
    outputs = {"pastiche": images / f"{stem}-pastiche.png", "painterly": images / f"{stem}-painterly.png"}
    commands = {"pastiche": pastiche_command(args, outputs["pastiche"], style_size),
                "painterly": painterly_command(args, outputs["painterly"])}

    runs: dict[str, dict] = {}
    reused = previous_pastiche(args.out_dir / f"{stem}.json", commands["pastiche"]) if args.reuse_pastiche else None
    for tool in ("pastiche", "painterly"):
        if tool == "pastiche" and reused:
            print(f"[bench_optimize] pastiche: reusing {reused['wall_s']:.1f} s from {reused.get('date', '?')}")
            runs[tool] = reused
            continue
        print(f"[bench_optimize] {tool}: {shlex.join(commands[tool])}", flush=True)
        m = run_measured(commands[tool], work / f"{tool}.log")
        if m.returncode != 0 or not outputs[tool].is_file():
            print(f"[bench_optimize] {tool} failed (exit {m.returncode}); last lines of {m.log}:\n{tail(m.log)}",
                  file=sys.stderr)
            return 1
        print(f"[bench_optimize] {tool}: {m.wall_s:.1f} s, peak RSS {m.peak_rss_mib or 0:.0f} MiB", flush=True)
        runs[tool] = {**m.to_dict(), "output": str(outputs[tool]), "date": time.strftime("%Y-%m-%d %H:%M")}

    for run in runs.values():
        run.update(perceptual_score(run["output"], args.content, args.style, args.size))

    a, b = runs["pastiche"], runs["painterly"]
    ratio = b["wall_s"] / a["wall_s"]
    loss_ratio = b["total"] / a["total"] if a["total"] else float("inf")
    data = {
        "benchmark": "optimize",
        "quick": args.quick,
        "size": args.size,
        "style_size": style_size,
        "pastiche_steps": args.steps,
        "content": str(args.content.resolve().relative_to(ROOT)) if args.content.resolve().is_relative_to(ROOT)
        else str(args.content),
        "style": str(args.style.resolve().relative_to(ROOT)) if args.style.resolve().is_relative_to(ROOT)
        else str(args.style),
        "score": "painterly PerceptualLoss at the `painterly optimize` defaults (fp32), "
                 "content/style/total are the weighted terms",
        "machine": machine(),
        "runs": runs,
        "wall_time_ratio": ratio,
        "total_loss_ratio": loss_ratio,
        "target_met": bool(ratio <= 1 / 3 and b["total"] <= a["total"]),
    }

    rows = []
    for tool, run in runs.items():
        rows.append([tool, f"`{_comparable(run['command'])}`".replace(str(ROOT) + "/", "").replace("|", "\\|"),
                     run["wall_s"], run["peak_rss_mib"], run["content"], run["style"], run["total"]])
    table = markdown_table(["tool", "command", "wall time (s)", "peak RSS (MiB)", "content loss", "style loss",
                            "total loss"], rows)
    m = data["machine"]
    md = (f"### Optimization: painterly vs pastiche ({args.size} px, {m['cores']} cores, {m['cpu']}, "
          f"torch {m['torch']})\n\n{table}\n\n"
          f"painterly / pastiche wall time: **{ratio:.3f}** (painterly {1 / ratio:.2f}x as fast); "
          f"total loss ratio (painterly / pastiche): **{loss_ratio:.3f}**. "
          "Target (total loss <= pastiche's in <= 1/3 of its time): "
          f"**{'met' if data['target_met'] else 'not met'}**.\n")
    json_path, md_path = write_results("optimize", data, md, quick=args.quick, folder=args.out_dir)
    print()
    print(md)
    print(f"[bench_optimize] wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
