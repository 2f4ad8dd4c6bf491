"""Render the optimization gallery in docs/: bundled photos x paintings with `painterly.optimize`.

    python scripts/make_gallery.py --size 512 --out docs/gallery [--device cuda]

Writes one image per pair plus ``contact_sheet.jpg`` (photos down, paintings across).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from painterly.imageio import load_image, save_image
from painterly.methods.optimize import optimize
from painterly.paintings import bundled_painting
from painterly.sheet import contact_sheet

ASSETS = Path(__file__).resolve().parent.parent / "painterly" / "assets" / "photos"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", default=["lake", "otters", "colosseum"])
    ap.add_argument("--styles", nargs="+", default=["starry-night", "great-wave", "woman-with-a-hat"])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=150, help="L-BFGS steps per scale")
    ap.add_argument("--scales", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default="docs/gallery")
    args = ap.parse_args()

    out = Path(args.out)
    grid, log = [], []
    for photo in args.photos:
        row = []
        for style in args.styles:
            t = time.perf_counter()
            img = optimize(ASSETS / f"{photo}.jpg", bundled_painting(style), size=args.size, steps=args.steps,
                           scales=args.scales, device=args.device, progress=False)
            seconds = time.perf_counter() - t
            save_image(img, out / f"{photo}--{style}.jpg", quality=90)
            log.append({"photo": photo, "style": style, "seconds": round(seconds, 2)})
            print(f"{photo} x {style}: {seconds:.1f} s", flush=True)
            row.append(img)
        grid.append(row)
    sheet = contact_sheet(grid, row_labels=args.photos, col_labels=args.styles,
                          header=[load_image(bundled_painting(s)) for s in args.styles],
                          row_images=[load_image(ASSETS / f"{p}.jpg") for p in args.photos])
    save_image(sheet, out / "contact_sheet.jpg", quality=88)
    settings = {k: getattr(args, k) for k in ("size", "steps", "scales", "device")}
    (out / "gallery.json").write_text(json.dumps({"settings": settings, "images": log}, indent=2))


if __name__ == "__main__":
    main()
