#!/usr/bin/env python
"""Speed of arbitrary style transfer (AdaIN, meta network) on this machine, and training throughput.

Measured in-process with the models loaded once (what a user calling :func:`painterly.transfer`
repeatedly with a loaded model sees; loading adds a one-off ~1 s): the median of ``--repeats``
runs after one warm-up run.

* ``adain``: ``painterly.transfer(photo, painting, model=prepare(...))`` end to end at N x N
  (style 512 px: decoding it, its statistics, the photo's encoding, decoding, the PIL result),
  for ``bf16`` (bf16 weights + channels_last: what ``precision="auto"`` does on an AMX CPU) and
  ``fp32``; plus its parts (content encoder, decoder, style statistics).
* ``meta``: ``generate`` (style statistics + meta forward -> transformer) and the generated
  network's forward at N x N, bf16 and fp32.
* ``--train``: training images/s at 256 px for both trainers (bf16 autocast vs fp32).

Without the shipped weights (``painterly/pretrained/``) random weights of the same shapes are
timed (the speed does not depend on the values); the JSON records which.

    python benchmarks/bench_transfer.py                 # 512 and 1024 px
    python benchmarks/bench_transfer.py --quick         # 256 px, one repeat
    python benchmarks/bench_transfer.py --train         # also training images/s
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, markdown_table, write_results  # noqa: E402

from painterly.errors import ModelError  # noqa: E402
from painterly.imageio import load_image, to_tensor  # noqa: E402
from painterly.losses import gram_matrix  # noqa: E402
from painterly.methods.transfer import _prepared, prepare, transfer  # noqa: E402
from painterly.models.adain import AdaIN, AdaINDecoder, AdaINDecoderConfig, load_decoder  # noqa: E402
from painterly.models.meta import MetaNetwork, load_meta, style_statistics  # noqa: E402

PHOTO = ROOT / "painterly/assets/photos/lake.jpg"
STYLE = ROOT / "painterly/assets/styles/starry-night.jpg"


def timed(fn, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls after one warm-up call."""
    return timed2(fn, repeats)[0]


def timed2(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds per torch thread (what the wall time would be on an
    otherwise idle machine with perfect scaling: the honest number when other jobs share the cores)."""
    fn()  # warm-up (oneDNN kernel selection)
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append((time.process_time() - c) / torch.get_num_threads())
    return statistics.median(walls), statistics.median(cpus)


def adain_model(width: float) -> tuple[AdaIN, str]:
    try:
        return AdaIN(load_decoder()), "shipped"
    except ModelError:
        return AdaIN(AdaINDecoder(AdaINDecoderConfig(width=width))), f"random (width {width})"


def meta_model() -> tuple[MetaNetwork, str]:
    try:
        return load_meta(), "shipped"
    except ModelError:
        return MetaNetwork(), "random"


def bench_adain(sizes: list[int], repeats: int, width: float) -> tuple[list[dict], str]:
    model, weights = adain_model(width)
    photo = load_image(PHOTO)
    rows = []
    for n in sizes:
        square = photo.resize((n, n))
        for precision in ("bf16", "fp32"):
            net = prepare(model, precision=precision, device="cpu")
            total, total_cpu = timed2(lambda sq=square, p=precision, n=n, net=net: transfer(
                sq, STYLE, model=net, precision=p, size=n, device="cpu"), repeats)
            dtype = torch.bfloat16 if precision == "bf16" else None
            x = to_tensor(square)
            s = to_tensor(load_image(STYLE, 512))
            if dtype is not None:
                x = x.to(dtype).contiguous(memory_format=torch.channels_last)
                s = s.to(dtype).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                feat = net.encode(x)
                enc = timed(lambda x=x, net=net: net.encode(x), repeats)
                dec = timed(lambda f=feat, net=net: net.decoder(f), repeats)
                sty = timed(lambda s=s, net=net: net.style_stats(s), repeats)
            rows.append({"method": "adain", "size": n, "precision": precision, "total_s": total,
                         "total_cpu_per_thread_s": total_cpu, "encoder_s": enc,
                         "decoder_s": dec, "style_stats_s": sty})
    return rows, weights


def bench_meta(sizes: list[int], repeats: int) -> tuple[list[dict], str]:
    meta, weights = meta_model()
    style = to_tensor(load_image(STYLE, 512))
    rows = []
    with torch.no_grad():
        for precision in ("bf16", "fp32"):
            dtype = torch.bfloat16 if precision == "bf16" else None
            encoder = _prepared(meta.stats_encoder(), torch.device("cpu"), dtype, fresh=True)
            s = style if dtype is None else style.to(dtype).contiguous(memory_format=torch.channels_last)
            gen = timed(lambda s=s, e=encoder: meta.generate(s, e), repeats)
            net = _prepared(meta.generate(s, encoder), torch.device("cpu"), dtype, fresh=True)
            for n in sizes:
                x = torch.rand(1, 3, n, n)
                if dtype is not None:
                    x = x.to(dtype).contiguous(memory_format=torch.channels_last)
                fwd, fwd_cpu = timed2(lambda x=x, p=net: p(x), repeats)
                rows.append({"method": "meta", "size": n, "precision": precision, "generate_s": gen,
                             "stylize_s": fwd, "stylize_cpu_per_thread_s": fwd_cpu})
    return rows, weights


def bench_training(steps: int, batch: int, size: int = 256) -> list[dict]:
    """Images/s of one training step of each trainer on random data (bf16 autocast vs fp32)."""
    from painterly.encoders import VGGEncoder
    from painterly.losses import calc_mean_std
    from painterly.models.adain import ADAIN_LAYER, STYLE_LAYERS, adain_from_stats
    from painterly.training.objectives.adain import adain_losses
    from painterly.training.objectives.meta import MetaTrainConfig, param_groups, stylize_per_style

    rows = []
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    s = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    for precision in ("bf16", "fp32"):
        cast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
        enc = VGGEncoder(STYLE_LAYERS).to(memory_format=torch.channels_last)
        dec = AdaINDecoder().to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(dec.parameters(), 1e-4)

        def adain_step(enc=enc, dec=dec, opt=opt, cast=cast) -> None:
            with cast:
                with torch.no_grad():
                    c = enc(x, [ADAIN_LAYER])[ADAIN_LAYER]
                    sf = enc(s, list(STYLE_LAYERS))
                    t = adain_from_stats(c, calc_mean_std(sf[ADAIN_LAYER]))
                loss = adain_losses(enc, dec(t), t, sf, 1.0, 10.0)["total"]
            _optimizer_step(loss, opt)

        rows.append(_throughput("adain", adain_step, steps, precision, batch, size))

        cfg = MetaTrainConfig()
        meta = MetaNetwork(cfg.meta_config())
        loss_fn = cfg.perceptual_loss()
        menc = VGGEncoder(list(dict.fromkeys([*loss_fn.layers, *meta.config.stat_layers])))
        menc.to(memory_format=torch.channels_last)
        mopt = torch.optim.Adam(param_groups(meta, 1e-4, 10.0))

        def meta_step(meta=meta, menc=menc, mopt=mopt, cast=cast, loss_fn=loss_fn) -> None:
            with cast:
                with torch.no_grad():
                    sf = menc(s[:2])
                    stats = style_statistics(sf, meta.config.stat_layers)
                    grams = {n: gram_matrix(sf[n]).repeat_interleave(batch // 2, 0) for n in loss_fn.style_layers}
                    targets = menc(x, list(loss_fn.content_layers))
                y = stylize_per_style(meta, meta(stats), x)
                loss = loss_fn(y, menc(y), targets, grams)["total"]
            _optimizer_step(loss, mopt)

        rows.append(_throughput("meta", meta_step, steps, precision, batch, size))
    return rows


def _optimizer_step(loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def _throughput(trainer: str, step, steps: int, precision: str, batch: int, size: int) -> dict:
    """Images/s of one training ``step`` function, timed over ``steps`` calls."""
    return {"trainer": trainer, "precision": precision, "batch": batch, "size": size,
            "images_per_s": batch / timed(step, steps)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="256 px, one repeat")
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--width", type=float, default=0.5, help="decoder width timed when no shipped decoder exists")
    p.add_argument("--train", action="store_true", help="also measure training images/s")
    p.add_argument("--train-steps", type=int, default=2)
    p.add_argument("--train-batch", type=int, default=4)
    args = p.parse_args(argv)
    sizes = args.sizes or ([256] if args.quick else [512, 1024])
    repeats = 1 if args.quick else args.repeats

    adain_rows, adain_weights = bench_adain(sizes, repeats, args.width)
    meta_rows, meta_weights = bench_meta(sizes, repeats)
    train_rows = bench_training(1 if args.quick else args.train_steps, args.train_batch,
                                128 if args.quick else 256) if args.train else []
    md = ["AdaIN (`painterly.transfer` with a `prepare()`d model; style 512 px) - weights: " + adain_weights, "",
          markdown_table(["size", "precision", "total s", "total CPU s/thread", "encoder s", "decoder s",
                          "style stats s"],
                         [[f"{r['size']}x{r['size']}", r["precision"], r["total_s"], r["total_cpu_per_thread_s"],
                           r["encoder_s"], r["decoder_s"], r["style_stats_s"]] for r in adain_rows]),
          "", "Meta network (generate once per style, then stylize) - weights: " + meta_weights, "",
          markdown_table(["size", "precision", "generate s", "stylize s", "stylize CPU s/thread"],
                         [[f"{r['size']}x{r['size']}", r["precision"], r["generate_s"], r["stylize_s"],
                           r["stylize_cpu_per_thread_s"]] for r in meta_rows])]
    if train_rows:
        md += ["", "Training throughput (random data)", "",
               markdown_table(["trainer", "precision", "batch", "size", "images/s"],
                              [[r["trainer"], r["precision"], r["batch"], r["size"], r["images_per_s"]]
                               for r in train_rows])]
    target = next((r["total_cpu_per_thread_s"] for r in adain_rows if r["size"] == 1024 and r["precision"] == "bf16"),
                  None)
    data = {"machine": machine(), "load_average": os.getloadavg(), "adain_weights": adain_weights,
            "meta_weights": meta_weights, "adain": adain_rows,
            "meta": meta_rows, "training": train_rows,
            "target_adain_1024_s": 1.5, "target_met": None if target is None else target <= 1.5}
    write_results("transfer", data, "\n".join(md), quick=args.quick)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
