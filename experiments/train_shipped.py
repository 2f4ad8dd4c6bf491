#!/usr/bin/env python3
"""Train the shipped multi-style model within a wall-clock budget.

Phase 1 trains one conditional-instance-norm network on every painting in --styles except the
held-out ones, jointly; phase 2 adds the held-out paintings with ``--add-style`` (only their new
gamma/beta rows are trained, the phase-1 styles stay bit-identical). Budget: setup time (data
decoding, VGG, CUDA start) is measured and the remaining time is split ``--split`` : rest.

Writes into --out-dir: base.safetensors (phase 1), multistyle.safetensors (the final model,
fp16), *.log.csv, *-samples/ preview grids, checkpoints, and train_shipped.json (timings,
losses, throughput, the exact settings) for the model card.

Example (GPU, about 7 minutes in all):
    python experiments/train_shipped.py --data ../shared/data/content --styles ../shared/data/styles \
        --out-dir runs/shipped --device cuda --budget 420
Smoke test on CPU:
    python experiments/train_shipped.py --data DIR --styles DIR --out-dir /tmp/x --device cpu --budget 60 \
        --preset slim --size 64 --batch-size 2 --style-size 128
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from painterly.imageio import find_images  # noqa: E402
from painterly.training.common import TrainOptions  # noqa: E402
from painterly.training.objectives.feedforward import FeedForwardConfig, train_feedforward  # noqa: E402

HOLD_OUT = ("mona-lisa", "poppy-field")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of training photos")
    p.add_argument("--styles", required=True, help="folder of paintings (a MANIFEST.tsv next to it supplies titles)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--budget", type=float, default=420.0, help="total wall-clock seconds (default %(default)s)")
    p.add_argument("--split", type=float, default=0.7, help="share of the training time for phase 1")
    p.add_argument("--hold-out", nargs="+", default=list(HOLD_OUT), metavar="NAME",
                   help="paintings (file stems) added in phase 2 (default: %(default)s)")
    p.add_argument("--preset", default="full", choices=("full", "medium", "slim"))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--add-lr", type=float, default=1e-2, help="learning rate of phase 2 (only gamma/beta train)")
    p.add_argument("--style-weight", type=float, default=None)
    p.add_argument("--content-weight", type=float, default=None)
    p.add_argument("--tv-weight", type=float, default=None)
    p.add_argument("--style-size", type=int, default=None)
    p.add_argument("--fp32", action="store_true")
    p.add_argument("--sample-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paintings = find_images(args.styles)
    hold = [s for s in paintings if s.stem in args.hold_out]
    train = [s for s in paintings if s.stem not in args.hold_out]
    missing = sorted(set(args.hold_out) - {s.stem for s in hold})
    if missing or not train:
        p.error(f"hold-out paintings not found: {missing}" if missing else "no paintings left to train on")
    cfg = FeedForwardConfig(preset=args.preset)
    for key in ("style_weight", "content_weight", "tv_weight", "style_size"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    overhead = 25.0 if args.device != "cpu" else 10.0  # per phase: decoding photos, VGG, style targets
    train_time = max(1.0, args.budget - 2 * overhead)

    def options(name: str, seconds: float, lr: float) -> TrainOptions:
        return TrainOptions(
            steps=10**7, batch_size=args.batch_size, size=args.size, lr=lr, seed=args.seed, device=args.device,
            fp32=args.fp32, checkpoint_every=args.checkpoint_every, sample_every=args.sample_every, log_every=20,
            time_limit=seconds, log_csv=str(out / f"{name}.log.csv"), samples_dir=str(out / f"{name}-samples"),
            keep_freed_memory=True,
        )

    report: dict = {"budget_s": args.budget, "config": cfg.to_dict(), "hold_out": [s.stem for s in hold],
                    "trained_jointly": [s.stem for s in train]}
    print(f"phase 1: {len(train)} styles jointly for {args.split * train_time:.0f} s", flush=True)
    s1 = train_feedforward(train, args.data, out / "base.safetensors", cfg,
                           options("base", args.split * train_time, args.lr))
    t1 = time.perf_counter()
    report["phase1"] = {"wall_s": round(t1 - t0, 1), **asdict(s1.result)}
    print(f"phase 1 done: {s1.result.step} steps, {s1.result.images_per_s:.1f} images/s, {s1.result.losses}",
          flush=True)

    remaining = max(1.0, args.budget - (t1 - t0) - overhead)
    print(f"phase 2: add {', '.join(s.stem for s in hold)} for {remaining:.0f} s", flush=True)
    s2 = train_feedforward(hold, args.data, out / "multistyle.safetensors", cfg,
                           options("add", remaining, args.add_lr), base=s1.model_path, half=True)
    t2 = time.perf_counter()
    report["phase2"] = {"wall_s": round(t2 - t1, 1), **asdict(s2.result)}
    report["total_wall_s"] = round(t2 - t0, 1)
    report["model"] = s2.model_path
    (out / "train_shipped.json").write_text(json.dumps(report, indent=2))
    print(f"done in {t2 - t0:.0f} s: {s2.model_path} ({len(s2.styles)} styles: "
          f"{', '.join(s.name for s in s2.styles)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
