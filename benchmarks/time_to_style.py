"""Time to a new style on this CPU: train, score every few minutes, compare with the quality bar.

Two ways to get a style the shipped model does not have, each trained for ``--minutes`` of
wall time (default batch 4 of 256 px crops; ``--size``/``--batch-size`` change them; the CPU
defaults of bf16 + channels-last):

* ``add``: ``painterly train --base ... --add-style`` (only the new style's gamma/beta rows are
  trained). The base is ``--base`` (default: the shipped model) without ``--style`` (default
  ``poppy-field``). For a clean measurement the base's shared weights must never have seen that
  painting: true of the shipped model of commit 5366ce0, where poppy-field had been added with
  ``--add-style`` (the numbers in ``results/archive/time_to_style.*`` were measured with it), but not of
  the current one, whose phases 3-4 trained all 10 styles jointly. So pass the older file::

      git show 5366ce0:painterly/pretrained/multistyle.safetensors > /tmp/base10.safetensors
      python benchmarks/time_to_style.py --data DATA --base /tmp/base10.safetensors
* ``fresh``: a new single-style network of the shipped architecture, trained from scratch.

Every ``--every`` seconds of training the model is scored like ``quality.py feedforward``: the
3 sample photos at 512 px, the model's training loss, against `painterly optimize` after 100
L-BFGS steps (``references/reference_feedforward.json``). Training resumes from its checkpoint
between scoring rounds (scoring time is not counted; the start-up of each segment is).

    python benchmarks/time_to_style.py --data ../shared/data/content [--mode add fresh] [--minutes 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, markdown_table, write_results  # noqa: E402
from benchmarks.quality import score_feedforward  # noqa: E402
from painterly.methods.stylize import get_model  # noqa: E402
from painterly.models.io import save_model  # noqa: E402
from painterly.paintings import bundled_painting  # noqa: E402
from painterly.training.common import TrainOptions  # noqa: E402
from painterly.training.objectives.feedforward import ADD_STYLE_LR, train_feedforward  # noqa: E402


def run(mode: str, args: argparse.Namespace, work: Path) -> list[dict]:
    style = bundled_painting(args.style)
    base = None
    if mode == "add":
        shipped = get_model(args.base)
        base = work / "base.safetensors"
        save_model(shipped.subset([n for n in shipped.names if n != args.style]), base)
    out, ckpt, log = work / f"{mode}.safetensors", work / f"{mode}.ckpt.safetensors", work / f"{mode}.csv"
    budget, wall, steps, points = args.minutes * 60.0, 0.0, 0, []
    while wall < budget - 1.0:
        opts = TrainOptions(steps=10**9, batch_size=args.batch_size, size=args.size,
                            lr=ADD_STYLE_LR if base else TrainOptions.lr,
                            device="cpu", time_limit=min(args.every, budget - wall), resume=ckpt.exists(),
                            checkpoint_every=0, progress=False, log_every=10, log_csv=str(log),
                            keep_freed_memory=True)
        t = time.perf_counter()
        summary = train_feedforward([style], args.data, out, options=opts, base=base, checkpoint=ckpt)
        wall += time.perf_counter() - t
        steps = summary.result.step
        records = score_feedforward(str(out), [args.style])
        totals = [r["feedforward"]["total"] for r in records]
        bars = [r["optimize_100"]["total"] for r in records]
        point = {"mode": mode, "wall_s": round(wall, 1), "steps": steps, "images": steps * opts.batch_size,
                 "mean_total": statistics.mean(totals), "mean_bar": statistics.mean(bars),
                 "at_or_below": sum(r["at_or_below"] for r in records), "pairs": len(records),
                 "records": records}
        points.append(point)
        print(f"{mode}: {wall / 60:.1f} min, {steps} steps, mean total {point['mean_total']:.3f} "
              f"(bar {point['mean_bar']:.3f}), {point['at_or_below']}/{len(records)} at or below", flush=True)
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of training photos")
    ap.add_argument("--style", default="poppy-field", help="bundled painting to learn (default poppy-field)")
    ap.add_argument("--base", default=None, help="model to take the style out of (default: the shipped one)")
    ap.add_argument("--mode", nargs="+", choices=("add", "fresh"), default=["add", "fresh"])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=150.0, help="seconds of training between scoring rounds")
    ap.add_argument("--size", type=int, default=256, help="training crop size (default 256)")
    ap.add_argument("--batch-size", type=int, default=4, help="default 4")
    ap.add_argument("--name", default="time_to_style", help="results file stem (default time_to_style)")
    args = ap.parse_args()

    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.mode:
            (Path(tmp) / mode).mkdir()
            points += run(mode, args, Path(tmp) / mode)
    shipped = score_feedforward(args.base, [args.style]) if args.style in get_model(args.base).names else []
    rows = [[p["mode"], f"{p['wall_s'] / 60:.1f}", p["steps"], p["images"], f"{p['mean_total']:.3f}",
             f"{p['mean_bar']:.3f}", f"{p['at_or_below']}/{p['pairs']}"] for p in points]
    if shipped:
        mean_total = statistics.mean(r["feedforward"]["total"] for r in shipped)
        mean_bar = statistics.mean(r["optimize_100"]["total"] for r in shipped)
        rows.append(["the base model's own row", "", "", "", f"{mean_total:.3f}", f"{mean_bar:.3f}",
                     f"{sum(r['at_or_below'] for r in shipped)}/{len(shipped)}"])
    table = markdown_table(["run", "minutes", "steps", "images", "mean total loss", "optimize@100 (bar)",
                            "photos at or below the bar"], rows)
    print(table)
    write_results(args.name, {"machine": machine(), "style": args.style, "size": args.size,
                              "batch_size": args.batch_size, "points": points, "shipped": shipped}, table)


if __name__ == "__main__":
    main()
