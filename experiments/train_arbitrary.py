#!/usr/bin/env python3
"""Train the two arbitrary-style models (AdaIN decoder and meta network) within a time budget.

Both trainings run at the same time as two processes (``--sequential`` runs them one after the
other, splitting the budget), each with ``painterly train-adain`` / ``painterly train-meta``, so
the CLI, its checkpoints, CSV logs and preview grids are exactly what users get. Output folder:

    OUT/adain_decoder.safetensors   decoder (fp16), with training facts in its metadata
    OUT/meta.safetensors            meta network (fp16)
    OUT/*.ckpt.safetensors          resumable checkpoints, OUT/*.log.csv, OUT/*-samples/
    OUT/adain.txt, OUT/meta.txt     each run's console output
    OUT/summary.json                steps, images/s, final and held-out losses of both

Example (GPU, 7 minutes):  python experiments/train_arbitrary.py --content-dir DATA/content \\
    --style-dir DATA/styles --out-dir runs/arbitrary --budget 420 --device cuda
Then copy the two .safetensors files into painterly/pretrained/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: Seconds kept back from each run's budget for start-up (imports, preloading photos, CUDA
#: init) and the end (held-out evaluation, writing the model).
OVERHEAD_S = 25.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--content-dir", required=True)
    p.add_argument("--style-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--budget", type=float, required=True, help="wall-clock seconds for everything")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--sequential", action="store_true", help="one training after the other (budget split 55/45)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--adain-batch", type=int, default=None, help="default 16 on GPU, 4 on CPU")
    p.add_argument("--meta-batch", type=int, default=None, help="default 16 on GPU, 4 on CPU")
    p.add_argument("--styles-per-step", type=int, default=None, help="meta: default 4 on GPU, 2 on CPU")
    p.add_argument("--adain-lr", type=float, default=2e-4,
                   help="default 2e-4: the paper's 1e-4 at batch 8, scaled to batch 16 (4e-4 was stable too)")
    p.add_argument("--meta-lr", type=float, default=1e-4, help="trunk and offset heads; the shared base network "
                   "learns 10x faster (train-meta --base-lr-scale)")
    p.add_argument("--hold-out", nargs="*", default=["the-scream", "udnie"])
    p.add_argument("--width", type=float, default=0.5, help="AdaIN decoder width multiplier (default %(default)s)")
    p.add_argument("--steps", type=int, default=1_000_000, help="step cap (normally the budget stops training)")
    p.add_argument("--sample-every", type=int, default=None, help="preview grids every N steps")
    p.add_argument("--resume", action="store_true", help="continue both runs from their checkpoints")
    return p.parse_args(argv)


def is_gpu(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return False


def command(kind: str, args: argparse.Namespace, out: Path, time_limit: float, gpu: bool) -> list[str]:
    name = "adain_decoder" if kind == "adain" else "meta"
    batch = (args.adain_batch if kind == "adain" else args.meta_batch) or (16 if gpu else 4)
    cmd = [sys.executable, "-m", "painterly", f"train-{kind}",
           "--content-dir", args.content_dir, "--style-dir", args.style_dir,
           "--out", str(out / f"{name}.safetensors"), "--steps", str(args.steps),
           "--batch-size", str(batch), "--size", str(args.size), "--time-limit", f"{time_limit:.0f}",
           "--device", args.device, "--half", "--log-every", "20",
           "--sample-every", str(args.sample_every or (1000 if gpu else 100)),
           "--checkpoint-every", "1000" if gpu else "200",
           "--lr", str(args.adain_lr if kind == "adain" else args.meta_lr), "--hold-out", *args.hold_out]
    if kind == "adain":
        cmd += ["--width", str(args.width)]
    else:
        cmd += ["--styles-per-step", str(args.styles_per_step or (4 if gpu else 2))]
    if args.resume:
        cmd.append("--resume")
    return cmd


def training_facts(path: Path) -> dict:
    """The ``training`` record stored in a written model file (empty if it is missing)."""
    if not path.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = json.loads((fh.metadata() or {}).get("painterly", "{}"))
    facts = dict(header.get("training") or {})
    facts.pop("config", None)
    return facts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gpu = is_gpu(args.device)
    env = dict(os.environ)
    if not gpu and args.sequential is False and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // 2))  # two CPU processes share the cores
    start = time.time()
    kinds = ["adain", "meta"]
    results: dict[str, int] = {}
    if args.sequential:
        for kind, share in zip(kinds, (0.55, 0.45), strict=True):
            left = args.budget - (time.time() - start)
            limit = max(5.0, min(left, args.budget * share) - OVERHEAD_S)
            with open(out / f"{kind}.txt", "w") as log:
                results[kind] = subprocess.call(command(kind, args, out, limit, gpu), stdout=log,
                                                stderr=subprocess.STDOUT, env=env)
    else:
        limit = max(5.0, args.budget - OVERHEAD_S)
        procs = {}
        for kind in kinds:
            log = open(out / f"{kind}.txt", "w")  # noqa: SIM115 - closed below
            procs[kind] = (subprocess.Popen(command(kind, args, out, limit, gpu), stdout=log,
                                            stderr=subprocess.STDOUT, env=env), log)
        for kind, (proc, log) in procs.items():
            results[kind] = proc.wait()
            log.close()
    summary = {
        "budget_s": args.budget, "wall_s": round(time.time() - start, 1), "device": args.device,
        "exit_codes": results,
        "adain": training_facts(out / "adain_decoder.safetensors"),
        "meta": training_facts(out / "meta.safetensors"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    for kind in kinds:
        facts = summary[kind]
        print(f"{kind}: exit {results[kind]}, {facts.get('steps')} steps, {facts.get('images_per_s')} images/s, "
              f"evaluation {facts.get('evaluation')}")
        if results[kind]:
            print(f"--- tail of {out / (kind + '.txt')}:")
            print("\n".join((out / f"{kind}.txt").read_text(errors="replace").splitlines()[-15:]))
    print(f"wrote {out}/summary.json in {summary['wall_s']} s")
    return 0 if all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
