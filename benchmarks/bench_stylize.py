"""Feed-forward speed: stylization at 512 and 1024 px, and training throughput at 256 px.

Each measurement runs in its own process, so its peak memory is its own. Rows:

* ``baseline fp32``: the classic 32/64/128, 5-block transformer, plain fp32 PyTorch forward
  (contiguous layout, ``no_grad``): the denominator of the speed-up.
* ``painterly``: :func:`painterly.stylize` with the shipped model, default settings
  (engine="auto": the faster engine here; on torch bf16 where measured faster, channels-last), whole call.
* ``huge``: :func:`painterly.stylize` on a 4096x4096 image, stroke scale off (the network sees every pixel,
  in blended tiles): time and peak memory (``bench_stroke_scale.py`` measures the default).
* ``bf16-diff``: mean and max absolute difference (in 0-255 levels) between the bf16 and fp32
  results of :func:`painterly.stylize` at 1024 px (the quality cost of the fast path).
* ``train fp32`` / ``train bf16``: :func:`painterly.training.objectives.feedforward.train_feedforward`
  images/s at 256 px, batch 4, on the bundled photos: steady state over 20 steps (the first two,
  where oneDNN creates its kernels, excluded; the JSON also has the overall rate).

    python benchmarks/bench_stylize.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, machine, markdown_table, run_child, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "painterly" / "assets" / "photos" / "lake.jpg"
WARMUP = 3  # oneDNN builds its kernels on the first calls


def child(mode: str, size: int, repeats: int) -> dict:
    """One measurement, run in a fresh process (``--child``)."""
    import torch

    from painterly.runtime import configure_threads

    configure_threads()
    if mode == "baseline":
        from painterly.models.transformer import TransformerConfig, TransformerNet

        net = TransformerNet(TransformerConfig(num_styles=1)).eval()
        x = torch.rand(1, 3, size, size)
        style = torch.ones(1, 1)
        times = []
        with torch.no_grad():
            for _ in range(repeats + WARMUP):
                t = time.perf_counter()
                net(x, style)
                times.append(time.perf_counter() - t)
        return {"seconds": statistics.median(times[WARMUP:])}
    if mode == "painterly":
        from PIL import Image

        import painterly

        img = Image.open(PHOTO).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        times = []
        for _ in range(repeats + WARMUP):
            t = time.perf_counter()
            painterly.stylize(img, "starry-night")
            times.append(time.perf_counter() - t)
        return {"seconds": statistics.median(times[WARMUP:])}
    if mode == "huge":
        from PIL import Image

        import painterly

        img = Image.open(PHOTO).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        t = time.perf_counter()
        painterly.stylize(img, "starry-night", stroke_scale=None)  # the network sees every pixel: tiles
        return {"seconds": time.perf_counter() - t}
    if mode == "bf16-diff":
        import numpy as np
        from PIL import Image

        import painterly

        img = Image.open(PHOTO).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        a, b = (np.asarray(painterly.stylize(img, "starry-night", engine="torch", precision=p), dtype=np.float64)
                for p in ("bf16", "fp32"))
        return {"mean_abs_levels": float(np.abs(a - b).mean()), "max_abs_levels": float(np.abs(a - b).max())}
    # training throughput
    from painterly.paintings import bundled_painting
    from painterly.training.common import TrainOptions
    from painterly.training.objectives.feedforward import train_feedforward

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.csv"
        opts = TrainOptions(steps=repeats, batch_size=4, size=size, fp32=(mode == "train-fp32"), device="cpu",
                            checkpoint_every=0, progress=False, log_every=1, log_csv=str(log),
                            keep_freed_memory=True)
        summary = train_feedforward([bundled_painting("starry-night")], PHOTO.parent, Path(tmp) / "m.safetensors",
                                    options=opts)
        times = [float(r["time"]) for r in csv.DictReader(log.read_text().splitlines())]
    # steady state: from the end of the 2nd step (oneDNN picks its kernels in the first) to the last
    steady = (len(times) - 2) * opts.batch_size / (times[-1] - times[1])
    return {"images_per_s": steady, "images_per_s_overall": summary.result.images_per_s,
            "steps": summary.result.step}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "SIZE", "REPEATS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, size, repeats = args.child[0], int(args.child[1]), int(args.child[2])
        print("RESULT " + json.dumps(child(mode, size, repeats)))
        return

    sizes = (128, 256) if args.quick else (512, 1024)
    repeats = 1 if args.quick else 5
    train_steps = 4 if args.quick else 20
    train_size = 64 if args.quick else 256
    plan = [("baseline", s, repeats) for s in sizes] + [("painterly", s, repeats) for s in sizes]
    plan += [("huge", 1024 if args.quick else 4096, 1), ("bf16-diff", sizes[-1], 1)]
    plan += [("train-fp32", train_size, train_steps), ("train-bf16", train_size, train_steps)]
    rows, records = [], []
    for mode, size, reps in plan:
        m, res = run_child([sys.executable, __file__, "--child", mode, str(size), str(reps)],
                           RESULTS / "logs" / f"stylize-{mode}-{size}.log")
        records.append({"mode": mode, "size": size, **res, "peak_rss_mib": m.peak_rss_mib})
        print(f"{mode:>10} {size:>5}px  {res}  peak {m.peak_rss_mib:.0f} MiB", flush=True)
    by = {(r["mode"], r["size"]): r for r in records}
    for size in sizes:
        base, ours = by[("baseline", size)], by[("painterly", size)]
        rows.append([f"stylize {size}x{size}", f"{base['seconds']:.3f} s", f"{ours['seconds']:.3f} s",
                     f"{base['seconds'] / ours['seconds']:.2f}x", f"{ours['peak_rss_mib']:.0f} MiB"])
    huge = next(r for r in records if r["mode"] == "huge")
    rows.append([f"stylize {huge['size']}x{huge['size']} (tiled)", "", f"{huge['seconds']:.2f} s", "",
                 f"{huge['peak_rss_mib']:.0f} MiB"])
    diff = next(r for r in records if r["mode"] == "bf16-diff")
    rows.append([f"bf16 vs fp32 output at {diff['size']} px", "", f"{diff['mean_abs_levels']:.2f}/255 mean, "
                 f"{diff['max_abs_levels']:.0f}/255 max", "", ""])
    f32, b16 = by[("train-fp32", train_size)], by[("train-bf16", train_size)]
    rows.append([f"train {train_size}px, batch 4", f"{f32['images_per_s']:.2f} img/s",
                 f"{b16['images_per_s']:.2f} img/s (bf16)", f"{b16['images_per_s'] / f32['images_per_s']:.2f}x",
                 f"{b16['peak_rss_mib']:.0f} MiB"])
    table = markdown_table(["task", "baseline (fp32, plain)", "painterly", "speed-up", "peak memory"], rows)
    print(table)
    write_results("stylize", {"machine": machine(), "records": records}, table, quick=args.quick)


if __name__ == "__main__":
    main()
