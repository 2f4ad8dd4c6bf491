#!/usr/bin/env python
"""Arbitrary-style quality on the painting corpus' fixed split: AdaIN decoders (and meta networks) on
the held-out corpus paintings (never trained on) and on the 10 bundled paintings, reported separately.

    python benchmarks/quality_corpus.py --adain runs/adain_corpus/adain_corpus.safetensors
    python benchmarks/quality_corpus.py --adain shipped --adain runs/x.safetensors --meta shipped

Content and style (Gram) loss at 512 px of ``painterly.transfer`` outputs (torch, full precision),
scored with the `painterly optimize` default loss (as ``quality.py arbitrary``), for each photo in
``--photos`` x each painting.
The split is ``docs/data/corpus_split.tsv`` (``scripts/corpus_split.py``); the corpus itself lives in
the shared data folder (``--corpus``), outside the product: it is read here, never shipped.
Writes ``results/quality_corpus.{json,md}`` (``--name`` for another name).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, machine_line, markdown_table, write_results  # noqa: E402

SPLIT = ROOT / "docs" / "data" / "corpus_split.tsv"
CORPUS = ROOT.parent / "shared" / "data" / "paintings"
PHOTOS = ROOT / "painterly" / "assets" / "photos"
BUNDLED = ROOT / "painterly" / "assets" / "styles"
SIZE = 512


def held_out(corpus: Path, limit: int | None) -> list[Path]:
    """The corpus paintings of the held-out split (every ``len / limit``-th one with ``limit``)."""
    with open(SPLIT, newline="") as f:
        files = [corpus / row["file"] for row in csv.DictReader(f, delimiter="\t") if row["split"] == "held-out"]
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise SystemExit(f"quality_corpus: {len(missing)} held-out paintings missing under {corpus} "
                         f"(e.g. {missing[0]}); pass --corpus")
    from painterly.training.objectives.arbitrary import spread

    return spread(files, limit) if limit else files


def score_all(models: list[tuple[str, str, str | None]], paintings: list[Path], photos: list[str]) -> dict:
    """label -> painting set -> list of per-(photo, painting) scores."""
    import painterly
    from painterly.encoders import VGGEncoder, VGGWeights
    from painterly.methods.optimize import OptimizeConfig
    from painterly.metrics import score_stylization

    loss = OptimizeConfig().loss()
    encoder = VGGEncoder(loss.layers, weights=VGGWeights())
    sets = {"held-out corpus": paintings, "bundled": sorted(BUNDLED.glob("*.jpg"))}
    scores: dict = {}
    for label, method, model in models:
        for set_name, files in sets.items():
            rows = scores.setdefault(label, {}).setdefault(set_name, [])
            for painting in files:
                for photo in photos:
                    src = PHOTOS / f"{photo}.jpg"
                    out = painterly.transfer(src, painting, size=SIZE, method=method, model=model,
                                             engine="torch", quality="high")
                    s = score_stylization(out, src, painting, size=SIZE, loss=loss, encoder=encoder)
                    rows.append({"photo": photo, "painting": painting.stem, "content": s["content"],
                                 "style": s["style"]})
            print(label, set_name, {k: round(statistics.mean(r[k] for r in rows), 4) for k in ("content", "style")},
                  flush=True)
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--adain", action="append", default=[], help="AdaIN decoder file or 'shipped' (repeatable)")
    p.add_argument("--meta", action="append", default=[], help="meta network file or 'shipped' (repeatable)")
    p.add_argument("--corpus", type=Path, default=CORPUS, help="folder of the corpus paintings")
    p.add_argument("--photos", nargs="+", default=["lake", "otters", "colosseum"])
    p.add_argument("--limit", type=int, default=None, help="at most this many held-out paintings (spread evenly)")
    p.add_argument("--name", default="quality_corpus")
    args = p.parse_args(argv)
    models = [(f"AdaIN {m}", "adain", None if m == "shipped" else m) for m in (args.adain or ["shipped"])]
    models += [(f"meta {m}", "meta", None if m == "shipped" else m) for m in args.meta]
    paintings = held_out(args.corpus, args.limit)
    scores = score_all(models, paintings, args.photos)

    from benchmarks.common import machine

    facts = machine()
    rows = []
    for label, sets in scores.items():
        for set_name, entries in sets.items():
            rows.append([label, set_name, len(entries), round(statistics.mean(e["content"] for e in entries), 4),
                         round(statistics.mean(e["style"] for e in entries), 4)])
    base = {(r[1]): r for r in rows if r[0] == rows[0][0]}
    for r in rows:
        ref = base[r[1]]
        r += [f"{r[3] / ref[3]:.3f}", f"{r[4] / ref[4]:.3f}"]
    table = (f"# Arbitrary styles on the corpus split ({SIZE} px)\n\n{machine_line(facts)}\n\n"
             f"{len(paintings)} held-out corpus paintings x {len(args.photos)} photos, and the 10 bundled paintings; "
             f"ratios against {rows[0][0]}.\n\n"
             + markdown_table(["model", "paintings", "pairs", "content", "style", "content rel.", "style rel."], rows))
    print(table)
    write_results(args.name, {"machine": facts, "size": SIZE, "held_out": [p.stem for p in paintings],
                              "scores": scores}, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
