#!/usr/bin/env python
"""docs/video_before_after.gif: a camera pan over a bundled photo, side by side: the clip, `painterly video`
with the temporal consistency off, and on (the default --temporal 0.6).

    python scripts/make_video_gif.py [--style starry-night] [--width 184] [--frames 24] [-o docs/video_before_after.gif]

The GIF shares one palette across all frames (so the palette itself does not flicker) and stays under
1.5 MB at the defaults.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import painterly
from painterly.video import clips

ROOT = Path(__file__).resolve().parent.parent
FPS = 12


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--style", default="starry-night")
    p.add_argument("--width", type=int, default=184, help="width of each panel")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--photo", default="lake.jpg")
    p.add_argument("-o", "--output", default=str(ROOT / "docs" / "video_before_after.gif"))
    args = p.parse_args(argv)
    w = args.width
    h = 2 * round(w * 9 / 32)
    frames = clips.pan(args.photo, args.frames, w, h, zoom=1.6)
    panels = [frames]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i, f in enumerate(frames):
            Image.fromarray(f).save(folder / f"{i:04d}.png")
        for temporal in (0.0, 0.6):
            out = painterly.video(folder, Path(tmp) / f"out-{temporal:g}", args.style, temporal=temporal, fps=FPS,
                                     progress=False)
            panels.append([np.asarray(Image.open(f).convert("RGB")) for f in sorted(out.path.glob("*.png"))])
    labels = ("clip", "painterly video --temporal 0", "--temporal 0.6 (default)")
    label_h, pad = 14, 2
    sheet_w = 3 * w + 4 * pad
    images = []
    for k in range(len(frames)):
        sheet = Image.new("RGB", (sheet_w, h + label_h + 2 * pad), "white")
        draw = ImageDraw.Draw(sheet)
        for j, (label, panel) in enumerate(zip(labels, panels, strict=True)):
            x = pad + j * (w + pad)
            sheet.paste(Image.fromarray(panel[k]), (x, pad))
            draw.text((x + 2, h + pad + 1), label, fill=(0, 0, 0))
        images.append(sheet)
    mosaic = Image.new("RGB", (sheet_w, (h + label_h + 2 * pad) * 4))
    for i, img in enumerate(images[:: max(1, len(images) // 4)][:4]):
        mosaic.paste(img, (0, i * img.height))
    palette = mosaic.quantize(255, method=Image.Quantize.MEDIANCUT)
    gif = [img.quantize(palette=palette, dither=Image.Dither.NONE) for img in images]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    gif[0].save(out, save_all=True, append_images=gif[1:], duration=round(1000 / FPS), loop=0, optimize=False)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(gif)} frames, {gif[0].width}x{gif[0].height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
