#!/usr/bin/env python3
"""Write the shipped ONNX files (names fixed by the ONNX contract) into painterly/pretrained/.

multistyle.{fp32,int8}.onnx, adain_decoder.{fp32,int8}.onnx and vgg19_relu4_1.{fp32,int8}.onnx, and
multistyle_slim.{fp32,int8}.onnx and adain_decoder_slim.{fp32,int8}.onnx where the distilled students
multistyle_slim.safetensors and adain_decoder_slim.safetensors are shipped; fp32 files
store their weights as fp16 (cast back in the graph). Every file is validated against the torch model on
the bundled photos (numbers printed and stored in its metadata). ``--only`` picks some of them.

Example:
    python scripts/export_shipped.py --out-dir painterly/pretrained --only multistyle.int8 multistyle.fp32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from painterly.export import export  # noqa: E402

PRETRAINED = ROOT / "painterly" / "pretrained"
#: file stem (the ONNX file is <stem>.<precision>.onnx) -> (model argument, part)
FILES = {"multistyle": ("shipped", None), "adain_decoder": ("adain", "decoder"), "vgg19_relu4_1": ("adain", "encoder"),
         "multistyle_slim": (str(PRETRAINED / "multistyle_slim.safetensors"), None),
         "adain_decoder_slim": (str(PRETRAINED / "adain_decoder_slim.safetensors"), "decoder")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=str(PRETRAINED))
    p.add_argument("--only", nargs="+", default=None, help="e.g. multistyle.int8 adain_decoder.fp32")
    p.add_argument("--size", type=int, default=384, help="validation size (longest side)")
    args = p.parse_args(argv)
    present = [s for s, (model, _) in FILES.items() if model in ("shipped", "adain") or Path(model).is_file()]
    # a decoder file (the slim AdaIN student) exports through the "adain" model with decoder=FILE
    wanted = args.only or [f"{s}.{prec}" for s in present for prec in ("fp32", "int8")]
    summary = {}
    for item in wanted:
        stem, precision = item.split(".")
        model, part = FILES[stem]
        out = Path(args.out_dir) / f"{stem}.{precision}.onnx"
        start = time.perf_counter()
        decoder = model if part == "decoder" and model != "adain" else None
        meta = export("adain" if decoder else model, out, precision, part=part, size=args.size, decoder=decoder)
        summary[out.name] = {"bytes": out.stat().st_size, "seconds": round(time.perf_counter() - start, 1),
                             "validation": meta["validation"], "quantization": meta.get("quantization")}
        print(out.name, json.dumps(summary[out.name]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
