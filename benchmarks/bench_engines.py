"""Engines: painterly.stylize and painterly.transfer (AdaIN) on onnxruntime vs torch, at 512 and 1024 px.

Each row runs in its own process (so its peak memory is its own) and times the public API on a
PIL image, I/O excluded: the first call (loading the model, creating the session) and the median
of the following calls. Rows:

* ``onnxruntime fp32`` / ``onnxruntime int8``: the shipped ``multistyle.{fp32,int8}.onnx`` (AdaIN:
  ``vgg19_relu4_1.*.onnx`` + ``adain_decoder.*.onnx``), every physical core, tiling in numpy.
* ``torch auto`` (bf16 autocast on AMX CPUs) and ``torch fp32``: the shipped ``.safetensors``.

ONNX files are taken from ``painterly/pretrained`` or ``--models DIR``; missing ones are skipped.

    python benchmarks/bench_engines.py [--quick] [--models DIR]
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

from benchmarks.common import RESULTS, machine, markdown_table, run_measured, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "painterly" / "assets" / "photos" / "lake.jpg"
STYLE = "starry-night"
WARMUP = 2


def child(task: str, engine: str, precision: str, size: int, repeats: int, models: str) -> dict:
    """One measurement in a fresh process (``--child``)."""
    from PIL import Image

    import painterly

    img = Image.open(PHOTO).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    folder = Path(models)
    if task == "stylize":
        if engine == "onnxruntime":
            kw = dict(model=folder / f"multistyle.{precision}.onnx", engine=engine)
        else:
            kw = dict(engine="torch", precision=precision, device="cpu")

        def call():
            return painterly.stylize(img, STYLE, **kw)
    else:
        if engine == "onnxruntime":
            from painterly.engines.onnx import OnnxAdaIN

            model = OnnxAdaIN(folder / f"vgg19_relu4_1.{precision}.onnx", folder / f"adain_decoder.{precision}.onnx")
            kw = dict(model=model)
        else:
            from painterly.methods.transfer import prepare

            kw = dict(model=prepare(precision=precision, device="cpu"), precision=precision, device="cpu",
                      engine="torch")

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
    return {"first_s": first, "seconds": statistics.median(times[WARMUP - 1 :]), "torch_loaded": "torch" in sys.modules}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    ap.add_argument("--models", default=str(ROOT / "painterly" / "pretrained"), help="folder of the .onnx files")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per row after the warm-up (default 5)")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        task, engine, precision, size, repeats, models = args.child
        print("RESULT " + json.dumps(child(task, engine, precision, int(size), int(repeats), models)))
        return

    import onnxruntime

    from painterly.engines.onnx import threads

    facts = {**machine(), "onnxruntime": onnxruntime.__version__, "onnxruntime_threads": threads(),
             "load_average_before": os.getloadavg()}
    sizes = (128, 256) if args.quick else (512, 1024)
    repeats = 1 if args.quick else args.repeats
    folder = Path(args.models)
    plan = []
    for task, onnx_files in (("stylize", ["multistyle.{}.onnx"]),
                             ("transfer", ["vgg19_relu4_1.{}.onnx", "adain_decoder.{}.onnx"])):
        for precision in ("fp32", "int8"):
            if all((folder / f.format(precision)).is_file() for f in onnx_files):
                plan += [(task, "onnxruntime", precision, s) for s in sizes]
        plan += [(task, "torch", precision, s) for precision in ("auto", "fp32") for s in sizes]
    rows, records = [], []
    for task, engine, precision, size in plan:
        name = f"engines-{task}-{engine}-{precision}-{size}"
        m = run_measured([sys.executable, __file__, "--child", task, engine, precision, str(size), str(repeats),
                          str(folder)], RESULTS / "logs" / f"{name}.log")
        log = Path(m.log).read_text()
        line = next((ln for ln in log.splitlines() if ln.startswith("RESULT ")), None)
        if m.returncode != 0 or line is None:
            raise SystemExit(f"{name} failed (exit {m.returncode}); see {m.log}")
        res = json.loads(line[7:])
        records.append({"task": task, "engine": engine, "precision": precision, "size": size, **res,
                        "peak_rss_mib": m.peak_rss_mib})
        print(f"{task:>8} {engine:>11} {precision:>4} {size:>5}px  {res}  peak {m.peak_rss_mib:.0f} MiB", flush=True)
        label = "bf16 autocast (AMX)" if precision == "auto" and facts["amx_bf16"] else precision
        rows.append([task, f"{size}x{size}", f"{engine} {label}", f"{res['seconds']:.3f} s", f"{res['first_s']:.2f} s",
                     f"{m.peak_rss_mib:.0f} MiB"])
    md = markdown_table(["task", "size", "engine", "median", "first call (load + run)", "peak RSS"], rows)
    facts["load_average_after"] = os.getloadavg()
    write_results("engines", {"machine": facts, "records": records}, md, quick=args.quick)
    print(md)


if __name__ == "__main__":
    main()
