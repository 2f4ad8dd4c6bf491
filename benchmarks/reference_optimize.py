"""Reference quality of `painterly optimize`: losses after N L-BFGS steps from the content image.

The feed-forward and arbitrary-style quality tables compare their outputs against these
numbers (same loss, same sizes). One optimization per (photo, style) pair; intermediate
results are captured at each requested step count, then scored with
:func:`painterly.metrics.score_stylization` in fp32.

    python benchmarks/reference_optimize.py --loss feedforward --steps 100 \
        --out benchmarks/references/reference_feedforward.json
    python benchmarks/reference_optimize.py --loss optimize --styles the-scream udnie --steps 100 300 \
        --out benchmarks/references/reference_heldout.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402
from painterly.imageio import atomic_write_bytes, to_pil  # noqa: E402
from painterly.methods.optimize import OptimizeConfig, optimize  # noqa: E402
from painterly.metrics import score_stylization  # noqa: E402
from painterly.paintings import bundled_painting, painting_names  # noqa: E402

PHOTOS = Path(__file__).resolve().parent.parent / "painterly" / "assets" / "photos"


def loss_options(name: str) -> dict:
    """Optimize options that reproduce a named loss configuration."""
    if name == "optimize":
        return {}
    from painterly.training.objectives.feedforward import FeedForwardConfig

    ff = FeedForwardConfig()
    return {"content_layers": dict(ff.content_layers), "style_layers": dict(ff.style_layers),
            "content_weight": ff.content_weight, "style_weight": ff.style_weight, "tv_weight": ff.tv_weight}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", default=["lake", "otters", "colosseum"])
    ap.add_argument("--styles", nargs="+", default=painting_names())
    ap.add_argument("--steps", nargs="+", type=int, default=[100])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--loss", choices=("optimize", "feedforward"), default="optimize")
    ap.add_argument("--style-weight", type=float, default=None, help="override the loss's style weight")
    ap.add_argument("--device", default=None)
    ap.add_argument("--images", default=None, help="folder for the result images (optional)")
    ap.add_argument("--out", required=True, help="JSON file to write")
    args = ap.parse_args()

    opts = loss_options(args.loss)
    if args.style_weight is not None:
        opts["style_weight"] = args.style_weight
    cfg = OptimizeConfig(size=args.size, steps=max(args.steps), scales=1, device=args.device, progress=False,
                         **opts)
    rows = []
    for photo in args.photos:
        for style in args.styles:
            captured = {}
            t = time.perf_counter()
            optimize(PHOTOS / f"{photo}.jpg", bundled_painting(style), config=cfg,
                     callback=lambda s, x, _l, c=captured: c.__setitem__(s, to_pil(x)) if s in args.steps else None)
            seconds = time.perf_counter() - t
            for steps, img in sorted(captured.items()):
                score = score_stylization(img, PHOTOS / f"{photo}.jpg", bundled_painting(style), size=args.size,
                                          loss=cfg.loss(), device=cfg.device or "cpu")
                rows.append({"photo": photo, "painting": style, "steps": steps, **score})
                if args.images:
                    Path(args.images).mkdir(parents=True, exist_ok=True)
                    img.save(Path(args.images) / f"{photo}--{style}--{steps}.jpg", quality=90)
            print(f"{photo} x {style}: {seconds:.1f} s {rows[-1]}", flush=True)
            result = {"machine": machine(), "loss": args.loss, "size": args.size, "optimizer": "lbfgs",
                      "init": "content", "scales": 1, "loss_config": cfg.loss().__dict__, "rows": rows}
            atomic_write_bytes(args.out, (json.dumps(result, indent=2, default=str) + "\n").encode())


if __name__ == "__main__":
    main()
