#!/usr/bin/env python3
"""ONNX export: onnxruntime latency of the shipped multi-style graphs (fp32 vs int8) against torch
(``painterly.stylize``, bf16 on AMX CPUs), and the int8 graph's quality (PSNR vs fp32, content and style loss).

Writes results/export.json and results/export.md. Needs painterly/pretrained/multistyle.{fp32,int8}.onnx
(scripts/export_shipped.py). ``--quick``: 512 px only, one repeat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import ROOT, machine, markdown_table, perceptual_score, write_results  # noqa: E402

PRETRAINED = ROOT / "painterly" / "pretrained"
PHOTOS = sorted((ROOT / "painterly" / "assets" / "photos").glob("*.jpg"))


def _feeds(photo: Path, size: int, meta: dict, style: int = 0) -> dict[str, np.ndarray]:
    from painterly.imageio import load_image

    img = np.asarray(load_image(photo, size), dtype=np.float32) / 255.0
    h, w = img.shape[0] // 4 * 4, img.shape[1] // 4 * 4
    n = len(meta["styles"])
    vec = np.zeros((1, n), np.float32)
    vec[0, style] = 1.0
    return {"image": np.ascontiguousarray(img[:h, :w].transpose(2, 0, 1)[None]), "style": vec,
            "stats": np.zeros((1, meta["stats_size"]), np.float32), "use_stats": np.zeros(1, np.float32)}


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_isa() -> dict[str, bool]:
    flags = set()
    with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
        for line in fh:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {f: f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")}


def _adain(feat_c: np.ndarray, feat_s: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """AdaIN in numpy, as the engine does it (biased variance + eps, as painterly.models.adain)."""
    mc, ms = feat_c.mean((2, 3), keepdims=True), feat_s.mean((2, 3), keepdims=True)
    sc, ss = np.sqrt(feat_c.var((2, 3), keepdims=True) + eps), np.sqrt(feat_s.var((2, 3), keepdims=True) + eps)
    return ((feat_c - mc) / sc * ss + ms).astype(np.float32)


def adain_quality(data: dict, threads: int, size: int) -> list[list]:
    """The shipped encoder and decoder graphs (int8 / fp32) against torch AdaIN on every photo."""
    import torch

    from painterly.export.onnx import _style_images, photos
    from painterly.models.adain import AdaIN, load_decoder
    from painterly.onnxfile import open_session

    ref_net = AdaIN(load_decoder())
    enc = {p: open_session(f, "encoder", threads)[0] for p in ("int8", "fp32")
           if (f := PRETRAINED / f"vgg19_relu4_1.{p}.onnx").is_file()}
    dec = {p: open_session(PRETRAINED / f"adain_decoder.{p}.onnx", "decoder", threads)[0] for p in ("fp32", "int8")}
    styles = [s[..., : s.shape[2] // 8 * 8, : s.shape[3] // 8 * 8].contiguous() for s in _style_images(size)]
    rows = []
    data["adain"] = {}
    for i, x in enumerate(photos(size)):
        s = styles[(3 * i) % len(styles)]
        with torch.inference_mode():
            ref = ref_net(x, s).clamp(0, 1).numpy()
        for ep, e in enc.items():
            start = time.perf_counter()
            fc, fs = (e.run(None, {"image": t.numpy()})[0] for t in (x, s))
            t_enc = time.perf_counter() - start
            for dp, d in dec.items():
                start = time.perf_counter()
                y = d.run(None, {"features": _adain(fc, fs)})[0]
                seconds = t_enc + time.perf_counter() - start
                val = round(10 * float(np.log10(1 / np.mean((y - ref) ** 2))), 2)
                key = f"{PHOTOS[i].stem}/{(3 * i) % len(styles)}"
                data["adain"].setdefault(key, {})[f"encoder {ep} + decoder {dp}"] = {"psnr": val, "seconds": seconds}
                rows.append([key, f"encoder {ep} + decoder {dp}", val, round(seconds, 3)])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import onnxruntime as ort
    import torch

    import painterly
    from painterly.onnxfile import open_session

    torch.set_num_threads(args.threads)
    sizes, repeats = ((512,), 1) if args.quick else ((512, 1024), 3)
    sessions = {prec: open_session(PRETRAINED / f"multistyle.{prec}.onnx", "stylize", threads=args.threads)
                for prec in ("fp32", "int8")}
    meta = sessions["fp32"][1]
    rows, data = [], {"machine": {**machine(), **cpu_isa(), "onnxruntime": ort.__version__,
                                  "ort_threads": args.threads, "load_average_1min": os.getloadavg()[0]},
                      "latency_s": {}, "quality": {}}
    for size in sizes:
        feeds = _feeds(PHOTOS[1], size, meta)
        lat = {f"onnxruntime {prec}": _time(lambda s=s, f=feeds: s.run(None, f), repeats)
               for prec, (s, _) in sessions.items()}
        img = painterly.load_image(PHOTOS[1], size)
        for precision in ("bf16", "fp32"):
            lat[f"torch {precision}"] = _time(lambda pr=precision, im=img: painterly.stylize(
                im, meta["styles"][0]["name"], precision=pr, device="cpu"), repeats)
        h, w = feeds["image"].shape[-2:]
        data["latency_s"][f"{w}x{h}"] = lat
        rows += [[f"{w}x{h}", k, round(v, 3)] for k, v in lat.items()]
    # quality of int8 against fp32, on every photo with two styles
    qrows = []
    for photo in PHOTOS:
        for style in (0, 6):
            feeds = _feeds(photo, 512, meta, style)
            outs = {prec: s.run(None, feeds)[0] for prec, (s, _) in sessions.items()}
            mse = float(np.mean((outs["int8"] - outs["fp32"]) ** 2))
            name = meta["styles"][style]["name"]
            painting = ROOT / "painterly" / "assets" / "styles" / f"{name}.jpg"
            scores = {prec: perceptual_score(torch.from_numpy(o), photo, [painting], 512) for prec, o in outs.items()}
            key = f"{photo.stem}/{name}"
            data["quality"][key] = {"psnr_int8_vs_fp32": round(10 * np.log10(1 / mse), 2), **scores}
            qrows.append([key, round(10 * np.log10(1 / mse), 2), scores["fp32"]["content"], scores["int8"]["content"],
                          scores["fp32"]["style"], scores["int8"]["style"]])
    arows = adain_quality(data, args.threads, 512)
    md = markdown_table(["size", "engine", "seconds"], rows) + "\n\n" + markdown_table(
        ["photo/style", "PSNR int8 vs fp32", "content fp32", "content int8", "style fp32", "style int8"], qrows) + \
        "\n\n" + markdown_table(["AdaIN photo/painting", "graphs", "PSNR vs torch fp32", "seconds"], arows)
    data["machine"]["load_average_1min_end"] = os.getloadavg()[0]
    write_results("export", data, md, args.quick)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
