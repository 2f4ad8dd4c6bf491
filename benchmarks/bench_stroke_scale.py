"""Stroke scale: the look of the 1024 px result at 2048 and 4096 px, its time and memory.

The lake photo is upscaled (bicubic) to 1024, 2048 and 4096 px on its longest side and stylized with the
shipped model (starry-night, default settings) twice: with the default stroke scale (the network paints a
1024 px copy, guided upsampling brings it to full size) and with the stroke scale off (the network sees
every pixel, in tiles). Each run is its own process (its peak memory is its own); the time is the median
of 3 ``painterly.stylize`` calls, the model loaded and warmed up at 256 px. Each result is downscaled to 1024 px
and scored with the shipped model's own training loss (Gram style loss, and content loss, at 1024 px); the
ratio to the 1024 px result's style loss shows whether the look holds (target: within 10% at 4096 px with
stroke scale). It also writes ``docs/stroke_scale.jpg``: the same region of each result, shown at the same
size.

    python benchmarks/bench_stroke_scale.py [--quick]
"""

from __future__ import annotations

import argparse
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
STYLE = "starry-night"
STRIP = ROOT / "docs" / "stroke_scale.jpg"
#: The region of every result shown in the strip, as fractions of the image: (left, top, width); square.
REGION = (0.19, 0.2, 0.1875)
TILE = 384  # display size of each crop in the strip
REPEATS = 3  # timed calls per run (the median is reported)
MODES = {"on": 1.0, "off": None}  # mode -> stroke_scale at the full sizes


def photo_at(size: int):
    from PIL import Image

    img = Image.open(PHOTO).convert("RGB")
    scale = size / max(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)


def child(size: int, stroke_scale: float | None, out: Path) -> dict:
    """One stylization, in a fresh process (``--child``): the result is saved to ``out``."""
    import painterly
    from painterly.methods.stylize import load_stylizer

    model = load_stylizer()
    painterly.stylize(photo_at(256), STYLE, model=model)  # warm-up: engine start, first kernels
    img = photo_at(size)
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        result = painterly.stylize(img, STYLE, model=model, stroke_scale=stroke_scale)
        times.append(time.perf_counter() - t)
    result.save(out)
    return {"seconds": statistics.median(times), "engine": model.engine}


def score(path: Path, reference_side: int) -> dict:
    """Content and style loss of the result at ``path``, downscaled to ``reference_side``, with the shipped
    model's training loss."""
    from PIL import Image

    from benchmarks.quality import model_loss
    from painterly.methods.stylize import get_model
    from painterly.metrics import score_stylization
    from painterly.paintings import bundled_painting

    loss, style_scale = model_loss(get_model())
    img = Image.open(path).convert("RGB")
    small = img.resize(photo_at(reference_side).size, Image.Resampling.LANCZOS)
    s = score_stylization(small, photo_at(reference_side), bundled_painting(STYLE), size=reference_side,
                          loss=loss, style_scale=style_scale)
    return {"style": s["style"], "content": s["content"]}


def strip(paths: dict[tuple[int, str], Path], sizes: list[int], labels: dict[str, str]):
    """The same region of each result at the same display size: columns by size, rows by mode."""
    from PIL import Image, ImageDraw

    left, top, frac = REGION
    label_h, pad = 18, 4
    rows = list(labels)
    sheet = Image.new("RGB", (len(sizes) * (TILE + pad) + pad, len(rows) * (TILE + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for r, mode in enumerate(rows):
        for c, size in enumerate(sizes):
            img = Image.open(paths[(size, mode)]).convert("RGB")
            side = round(frac * img.width)
            x0, y0 = round(left * img.width), round(top * img.height)
            crop = img.crop((x0, y0, x0 + side, y0 + side)).resize((TILE, TILE), Image.Resampling.LANCZOS)
            x, y = pad + c * (TILE + pad), pad + r * (TILE + label_h + pad)
            sheet.paste(crop, (x, y))
            draw.text((x + 2, y + TILE + 3), f"{size} px, {labels[mode]}", fill=(0, 0, 0))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="256/512/1024 px at stroke scale 4 (smoke test)")
    ap.add_argument("--child", nargs=3, metavar=("SIZE", "STROKE_SCALE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        size, x, out = int(args.child[0]), args.child[1], Path(args.child[2])
        print("RESULT " + json.dumps(child(size, None if x == "off" else float(x), out)))
        return

    sizes = [256, 512, 1024] if args.quick else [1024, 2048, 4096]
    on = 1024 / sizes[0]  # the stroke scale whose working size is the smallest size
    labels = {"on": f"stroke scale {on:g}" + (" (default)" if on == 1 else ""), "off": "stroke scale off"}
    records, paths = [], {}
    with tempfile.TemporaryDirectory(prefix="painterly-stroke-") as tmp:
        for size in sizes:
            for mode in MODES:
                out = Path(tmp) / f"{size}-{mode}.png"
                x = str(on) if mode == "on" else "off"
                m, res = run_child([sys.executable, __file__, "--child", str(size), x, str(out)],
                                   RESULTS / "logs" / f"stroke_scale-{size}-{mode}.log")
                paths[(size, mode)] = out
                records.append({"size": size, "mode": mode, "stroke_scale": on if mode == "on" else None, **res,
                                "peak_rss_mib": m.peak_rss_mib})
                print(f"{size:>5}px stroke scale {mode:>3}: {res['seconds']:.2f} s, peak {m.peak_rss_mib:.0f} MiB",
                      flush=True)
        for rec in records:
            rec.update(score(paths[(rec["size"], rec["mode"])], sizes[0]))
        sheet = strip(paths, sizes, labels)
    ref = next(r["style"] for r in records if r["size"] == sizes[0] and r["mode"] == "on")
    for rec in records:
        rec["style_ratio"] = rec["style"] / ref
    rows = [[f"{r['size']} px", labels[r["mode"]], f"{r['seconds']:.2f} s", f"{r['peak_rss_mib']:.0f} MiB",
             r["style"], f"{r['style_ratio']:.3f}", r["content"]] for r in records]
    table = markdown_table(["output", "mode", "stylize", "peak memory", f"style loss at {sizes[0]} px",
                            f"vs {sizes[0]} px", "content loss"], rows)
    print(table)
    write_results("stroke_scale", {"machine": machine(), "photo": PHOTO.name, "style": STYLE,
                                   "reference_side": sizes[0], "records": records}, table, quick=args.quick)
    dest = RESULTS / "logs" / "stroke_scale.quick.jpg" if args.quick else STRIP  # after the commit stamp
    dest.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dest, quality=82, optimize=True)
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
