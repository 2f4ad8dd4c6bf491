"""export a model to ONNX (fp32, fp16 or int8), validated against the torch model

Write an ONNX graph of MODEL: a stylization model file (multi-style, `painterly train`, or `painterly transfer
--method meta --save-model`), 'shipped' (the shipped multi-style model) or 'adain' (with --part encoder, decoder or
pipeline). The file is run in onnxruntime on the bundled photos and compared with the torch model; the numbers are
printed and stored in the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..onnxfile import PRECISIONS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file, 'shipped' or 'adain'")
    p.add_argument("-o", "--output", required=True, help="output .onnx file")
    p.add_argument("--precision", default="fp32", metavar="{" + ",".join(PRECISIONS) + "}",
                   help="fp32 (default), fp16 (for GPUs and the web) or int8 (static QDQ, for CPUs)")
    p.add_argument("--part", default=None, metavar="{encoder,decoder,pipeline}",
                   help="adain only: VGG19 encoder, decoder, or one graph (content, style, alpha) -> output")
    p.add_argument("--pipeline", action="store_true", help="adain only: same as --part pipeline")
    p.add_argument("--decoder", default=None, help="adain only: decoder weights file (default: the shipped one)")
    p.add_argument("--calibration", default=None, metavar="DIR",
                   help="int8: folder of photos to calibrate on (default: the bundled photos, augmented)")
    p.add_argument("--size", type=int, default=384, help="longest side of the validation photos (default %(default)s)")
    p.add_argument("--full-weights", action="store_true",
                   help="fp32: store the weights as fp32 (default: fp16 cast to fp32 in the graph, half the file)")


def run(args: argparse.Namespace) -> int:
    from ..errors import PainterlyError
    from ..export import export

    part = args.part
    if args.pipeline:
        if part not in (None, "pipeline"):
            raise PainterlyError("--pipeline and --part do not go together")
        part = "pipeline"
    meta = export(args.model, args.output, args.precision, part=part, calibration=args.calibration, size=args.size,
                  half_weights=not args.full_weights, decoder=args.decoder)
    v = meta["validation"]
    size_mb = Path(args.output).stat().st_size / 1e6
    print(f"wrote {args.output} ({meta['kind']}, {meta['precision']}, {size_mb:.2f} MB); vs torch on {v['cases']} "
          f"inputs (bundled photos at {args.size} px): max abs diff {v['max_abs']:.3g}, PSNR {v['psnr']:.2f} dB")
    return 0
