"""Quality tables, as papers report them: content and style (Gram) loss at 512 px.

* ``feedforward``: every style of the shipped multi-style model on the three sample photos,
  scored with the model's own training loss, against `painterly optimize` after 100 L-BFGS
  steps from the photo with the same loss (``references/reference_feedforward.json``).
* ``arbitrary``: AdaIN and meta networks on the held-out paintings (never trained on),
  scored with the `painterly optimize` default loss, against optimize at 100 and 300 steps
  (``references/reference_heldout.json``).

Both also report each output's ``lattice_score`` (periodic 4-pixel artifacts; about 1-1.5 is clean).

The reference numbers come from ``benchmarks/reference_optimize.py`` (see its docstring;
the shipped ones were computed on a GPU and are scored in fp32, like these).

    python benchmarks/quality.py feedforward
    python benchmarks/quality.py arbitrary
    python benchmarks/quality.py arbitrary --meta runs/meta/meta.safetensors   # a candidate (own results file)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import HERE, markdown_table, write_results  # noqa: E402
from painterly.losses import PerceptualLoss  # noqa: E402
from painterly.metrics import lattice_score, score_stylization  # noqa: E402
from painterly.paintings import bundled_painting  # noqa: E402

#: optimize@N reference losses (inputs to the quality tables, made by reference_optimize.py)
REFERENCES = HERE / "references"

PHOTOS = Path(__file__).resolve().parent.parent / "painterly" / "assets" / "photos"
SIZE = 512


def _reference(name: str) -> dict[tuple[str, str, int], dict]:
    data = json.loads((REFERENCES / f"{name}.json").read_text())
    return {(r["photo"], r["painting"], r["steps"]): r for r in data["rows"]}


def model_loss(model) -> tuple[PerceptualLoss, float]:
    """The loss a feed-forward model was trained with (from its metadata) and its style scale at 512 px."""
    cfg = model.training["config"]
    loss = PerceptualLoss(content_layers=cfg["content_layers"], style_layers=cfg["style_layers"],
                          content_weight=cfg["content_weight"], style_weight=cfg["style_weight"],
                          tv_weight=cfg["tv_weight"])
    return loss, cfg.get("style_size", SIZE) / SIZE


def score_feedforward(model_path: str | None, names: list[str] | None = None,
                      photos: tuple[str, ...] = ("lake", "otters", "colosseum")) -> list[dict]:
    """Score styles of a feed-forward model on the sample photos at 512 px against optimize@100."""
    import painterly
    from painterly.methods.stylize import get_model

    m = get_model(model_path)
    loss, style_scale = model_loss(m)
    ref = _reference("reference_feedforward")
    records = []
    for photo in photos:
        for name in names or m.names:
            out = painterly.stylize(PHOTOS / f"{photo}.jpg", name, size=SIZE, model=model_path)
            s = score_stylization(out, PHOTOS / f"{photo}.jpg", bundled_painting(name), size=SIZE, loss=loss,
                                  style_scale=style_scale)
            s["lattice"] = lattice_score(out)
            r = ref.get((photo, name, 100))
            records.append({"photo": photo, "style": name, "feedforward": s, "optimize_100": r,
                            "at_or_below": r is not None and s["total"] <= r["total"]})
    return records


def feedforward(model: str | None) -> tuple[dict, str]:
    from painterly.methods.stylize import get_model

    cfg = get_model(model).training["config"]
    records = score_feedforward(model)
    rows = []
    for r in records:
        s, ref = r["feedforward"], r["optimize_100"]
        rows.append([r["photo"], r["style"], s["content"], s["style"], s["total"], ref["total"] if ref else None,
                     "yes" if r["at_or_below"] else ("no" if ref else "n/a")])
    n_ok = sum(r["at_or_below"] for r in records)
    n_ref = sum(r["optimize_100"] is not None for r in records)
    table = markdown_table(["photo", "style", "content", "style loss", "total", "optimize 100 steps total",
                            "feed-forward <= optimize"], rows)
    table += f"\n\nFeed-forward at or below optimize@100 in {n_ok} of {n_ref} pairs with a reference."
    lattice = sum(r["feedforward"]["lattice"] for r in records) / max(1, len(records))
    table += f" Mean lattice score (4-pixel period; about 1-1.5 is clean): {lattice:.2f}."
    return {"loss": cfg, "size": SIZE, "records": records, "at_or_below": n_ok, "pairs": n_ref}, table


def arbitrary(models: dict[str, str | None] | None = None) -> tuple[dict, str]:
    """``models``: weights file per method (``{"meta": "runs/x/meta.safetensors"}``; default the shipped ones)."""
    import painterly
    from painterly.methods.optimize import OptimizeConfig

    models = models or {}
    loss = OptimizeConfig().loss()
    ref = _reference("reference_heldout")
    paintings = sorted({k[1] for k in ref})
    rows, records = [], []
    for photo in ("lake", "otters", "colosseum"):
        for name in paintings:
            entry = {"photo": photo, "painting": name}
            for method in ("adain", "meta"):
                out = painterly.transfer(PHOTOS / f"{photo}.jpg", bundled_painting(name), size=SIZE, method=method,
                                         model=models.get(method))
                entry[method] = score_stylization(out, PHOTOS / f"{photo}.jpg", bundled_painting(name), size=SIZE,
                                                  loss=loss)
                entry[method]["lattice"] = lattice_score(out)
            for steps in (100, 300):
                entry[f"optimize_{steps}"] = ref.get((photo, name, steps))
            records.append(entry)
            rows.append([photo, name] + [entry[k]["content"] if entry[k] else None for k in
                                          ("adain", "meta", "optimize_100", "optimize_300")]
                        + [entry[k]["style"] if entry[k] else None for k in
                           ("adain", "meta", "optimize_100", "optimize_300")]
                        + [entry["adain"]["lattice"], entry["meta"]["lattice"]])
            print(rows[-1], flush=True)
    header = ["photo", "held-out painting", "content AdaIN", "content meta", "content opt@100", "content opt@300",
              "style AdaIN", "style meta", "style opt@100", "style opt@300", "lattice AdaIN", "lattice meta"]
    return {"loss": loss.__dict__, "size": SIZE, "records": records}, markdown_table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", choices=("feedforward", "arbitrary"))
    ap.add_argument("--model", default=None, help="feed-forward model file (default: the shipped one)")
    ap.add_argument("--adain", default=None, help="AdaIN decoder file (default: the shipped one)")
    ap.add_argument("--meta", default=None, help="meta network file (default: the shipped one)")
    args = ap.parse_args()
    if args.table == "feedforward":
        data, table = feedforward(args.model)
    else:
        data, table = arbitrary({"adain": args.adain, "meta": args.meta})
    print(table)
    candidate = args.model or args.adain or args.meta
    # scores of other files than the shipped ones never overwrite the shipped models' table
    write_results(f"quality_{args.table}" + ("_candidate" if candidate else ""), data, table)


if __name__ == "__main__":
    main()
