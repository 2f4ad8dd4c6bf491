"""Render the docs/ pictures of the shipped models (CPU is fine; about two minutes).

    python scripts/make_docs_sheets.py [--size 512] [--only feedforward heldout alpha interpolation]
    python scripts/make_docs_sheets.py --only deploy --slim runs/slim   # a student not shipped (yet)

* docs/feedforward_contact_sheet.jpg  photos x the 10 styles of the shipped feed-forward model
* docs/arbitrary_heldout.jpg           held-out paintings x photos, AdaIN and meta network
* docs/adain_alpha_sweep.jpg           AdaIN style/content trade-off, alpha 0 .. 1
* docs/adain_interpolation.jpg         4-style interpolation grid (as in the AdaIN paper)
* docs/deploy_variants.jpg             full vs int8 vs slim model variants (onnxruntime), photos x 2 styles
* docs/adain_variants.jpg              the same for the AdaIN decoder, photos x 2 held-out paintings
* docs/corpus_heldout.jpg              held-out corpus paintings x photos, AdaIN and meta network, shipped
                                       (and with --adain-after/--meta-after the corpus-trained models next to them)

    python scripts/make_docs_sheets.py --only corpus --adain-after runs/adain.safetensors \\
        --meta-after runs/meta.safetensors

The corpus sheet reads four public-domain paintings of the held-out split (docs/data/corpus_split.tsv) from
the shared data folder (--corpus); they are shown, not shipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import painterly
from painterly.imageio import load_image, save_image
from painterly.paintings import bundled_painting
from painterly.sheet import contact_sheet

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "painterly" / "assets" / "photos"
DOCS = ROOT / "docs"
PHOTO_NAMES = ["lake", "otters", "colosseum"]


def feedforward_sheet(size: int) -> None:
    styles = painterly.list_styles()
    grid = [[painterly.stylize(PHOTOS / f"{p}.jpg", s.name, size=size) for s in styles] for p in PHOTO_NAMES]
    sheet = contact_sheet(grid, row_labels=PHOTO_NAMES, col_labels=[s.name for s in styles],
                          header=[load_image(bundled_painting(s.name)) for s in styles],
                          row_images=[load_image(PHOTOS / f"{p}.jpg") for p in PHOTO_NAMES], cell=(240, 160))
    save_image(sheet, DOCS / "feedforward_contact_sheet.jpg", quality=88)


def heldout_sheet(size: int, held_out: list[str]) -> None:
    cols, labels, header = [], [], []
    for name in held_out:
        for method in ("adain", "meta"):
            cols.append((name, method))
            labels.append(f"{name} ({method})")
            header.append(load_image(bundled_painting(name)))
    grid = [[painterly.transfer(PHOTOS / f"{p}.jpg", bundled_painting(n), size=size, method=m) for n, m in cols]
            for p in PHOTO_NAMES]
    sheet = contact_sheet(grid, row_labels=PHOTO_NAMES, col_labels=labels, header=header,
                          row_images=[load_image(PHOTOS / f"{p}.jpg") for p in PHOTO_NAMES], cell=(256, 160))
    save_image(sheet, DOCS / "arbitrary_heldout.jpg", quality=88)


#: held-out corpus paintings of the sheet (public domain; docs/data/corpus_split.tsv): file -> label
#: (Durer, Adam and Eve; Delacroix, self-portrait; Degas, The Dance Foyer at the Opera; Monet, Charing Cross Bridge)
CORPUS_SHEET = {"image-data-157full.jpg": "Durer 1507",
                "image-data-240full.jpg": "Delacroix 1837",
                "image-style-transfer-degas-the-dance-foyer-at-the-opera.jpg": "Degas 1872",
                "image-style-transfer-monet-charing-cross-bridge.jpg": "Monet c. 1900"}


def corpus_sheet(size: int, corpus: Path, adain_after: Path | None, meta_after: Path | None) -> None:
    """Rows: photos; columns: per held-out painting, each model (shipped, then the "after" ones given)."""
    models = [("AdaIN", "adain", None), ("meta", "meta", None)]
    models += [(label, method, str(path)) for label, method, path in
               (("AdaIN corpus", "adain", adain_after), ("meta corpus", "meta", meta_after)) if path]
    paintings = [corpus / name for name in CORPUS_SHEET]
    missing = [p.name for p in paintings if not p.is_file()]
    if missing:
        raise SystemExit(f"corpus sheet: {missing[0]} not under {corpus}; pass --corpus")
    cols = [(p, m) for p in paintings for m in models]
    grid = [[painterly.transfer(PHOTOS / f"{photo}.jpg", p, size=size, method=method, model=model)
             for p, (_, method, model) in cols] for photo in PHOTO_NAMES]
    sheet = contact_sheet(grid, row_labels=PHOTO_NAMES, col_labels=[f"{CORPUS_SHEET[p.name]}: {label}"
                                                                    for p, (label, _, _) in cols],
                          header=[load_image(p) for p, _ in cols],
                          row_images=[load_image(PHOTOS / f"{p}.jpg") for p in PHOTO_NAMES], cell=(240, 160))
    save_image(sheet, DOCS / "corpus_heldout.jpg", quality=88)


def alpha_sweep(size: int, painting: str) -> None:
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    row = [painterly.transfer(PHOTOS / "colosseum.jpg", bundled_painting(painting), alpha=a, size=size)
           for a in alphas]
    sheet = contact_sheet([row], col_labels=[f"alpha = {a}" for a in alphas], cell=(256, 160))
    save_image(sheet, DOCS / "adain_alpha_sweep.jpg", quality=88)


def interpolation_grid(size: int, paintings: list[str], n: int = 5) -> None:
    styles = [bundled_painting(p) for p in paintings]
    grid = []
    for i in range(n):
        row = []
        for j in range(n):
            u, v = j / (n - 1), i / (n - 1)
            w = [(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v]  # bilinear weights of the 4 corners
            keep = [k for k in range(4) if w[k] > 0]
            row.append(painterly.transfer(PHOTOS / "lake.jpg", [styles[k] for k in keep],
                                          style_weights=[w[k] for k in keep], size=size))
        grid.append(row)
    labels = [f"top-left {paintings[0]}, top-right {paintings[1]}", f"bottom-left {paintings[2]}",
              f"bottom-right {paintings[3]}"]
    sheet = contact_sheet(grid, col_labels=labels + [""] * (n - len(labels)), cell=(200, 120))
    save_image(sheet, DOCS / "adain_interpolation.jpg", quality=88)


#: The deployment variants shown side by side: label -> (engine, model file in painterly/pretrained)
DEPLOY_VARIANTS = {
    "full fp32": ("onnxruntime", "multistyle.fp32.onnx"),
    "full int8": ("onnxruntime", "multistyle.int8.onnx"),
    "slim fp32": ("onnxruntime", "multistyle_slim.fp32.onnx"),
    "slim int8": ("onnxruntime", "multistyle_slim.int8.onnx"),
}


def variant_files(table: dict[str, tuple[str, str]], candidate: Path | None) -> dict[str, tuple[str, Path]]:
    """label -> (engine, file) of the variants of ``table`` that exist; with ``candidate`` (a folder of a
    student's files, not shipped) the slim variants come from there, labelled "slim candidate"."""
    pretrained = ROOT / "painterly" / "pretrained"
    out = {}
    for label, (engine, name) in table.items():
        folder = candidate if candidate is not None and label.startswith("slim") else pretrained
        if (folder / name).is_file():
            out[label.replace("slim", "slim candidate") if folder is candidate else label] = (engine, folder / name)
    return out


def variants_sheet(variants: dict[str, tuple[str, Path]], columns: list[str], run, out: Path) -> None:
    """Photos x (column, variant): ``run(photo_path, column, engine, file)`` makes each cell."""
    cols = [(c, label) for c in columns for label in variants]
    grid = [[run(PHOTOS / f"{p}.jpg", c, *variants[label]) for c, label in cols] for p in PHOTO_NAMES]
    sheet = contact_sheet(grid, row_labels=PHOTO_NAMES, col_labels=[f"{c}: {v}" for c, v in cols],
                          row_images=[load_image(PHOTOS / f"{p}.jpg") for p in PHOTO_NAMES], cell=(240, 160))
    save_image(sheet, out, quality=88)


def deploy_sheet(size: int, styles: list[str], slim: Path | None = None) -> None:
    """``slim``: a folder with a candidate student's ``multistyle_slim.{fp32,int8}.onnx`` (not shipped)."""
    variants_sheet(variant_files(DEPLOY_VARIANTS, slim), styles,
                   lambda photo, style, engine, model: painterly.stylize(photo, style, size=size, engine=engine,
                                                                        model=model),
                   DOCS / "deploy_variants.jpg")


ADAIN_VARIANTS = {
    "full fp32": ("onnxruntime", "adain_decoder.fp32.onnx"),
    "full int8": ("onnxruntime", "adain_decoder.int8.onnx"),
    "slim fp32": ("onnxruntime", "adain_decoder_slim.fp32.onnx"),
    "slim int8": ("onnxruntime", "adain_decoder_slim.int8.onnx"),
}


def adain_deploy_sheet(size: int, paintings: list[str], slim: Path | None = None) -> None:
    """AdaIN decoder variants (full vs slim, fp32 vs int8 graphs; the int8 VGG encoder for all) on paintings
    the decoders never trained on. ``slim``: a folder with a candidate's ``adain_decoder_slim.{fp32,int8}.onnx``."""
    variants_sheet(variant_files(ADAIN_VARIANTS, slim), paintings,
                   lambda photo, painting, engine, model: painterly.transfer(photo, painting, size=size,
                                                                            engine=engine, model=model),
                   DOCS / "adain_variants.jpg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--slim", type=Path, default=None,
                    help="deploy sheet: folder of a candidate slim student's ONNX files (not shipped)")
    ap.add_argument("--adain-slim", type=Path, default=None,
                    help="adain-deploy sheet: folder of a candidate slim AdaIN decoder's ONNX files (not shipped)")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "paintings",
                    help="corpus sheet: the painting corpus folder")
    ap.add_argument("--adain-after", type=Path, default=None, help="corpus sheet: a corpus-trained AdaIN decoder")
    ap.add_argument("--meta-after", type=Path, default=None, help="corpus sheet: a corpus-trained meta network")
    sheets = {
        "feedforward": lambda size: feedforward_sheet(size),
        "heldout": lambda size: heldout_sheet(size, ["the-scream", "udnie"]),
        "alpha": lambda size: alpha_sweep(size, "the-scream"),
        "deploy": lambda size: deploy_sheet(size, ["starry-night", "the-scream"], args.slim),
        "adain-deploy": lambda size: adain_deploy_sheet(size, ["the-scream", "udnie"], args.adain_slim),
        "corpus": lambda size: corpus_sheet(size, args.corpus, args.adain_after, args.meta_after),
        "interpolation": lambda size: interpolation_grid(min(size, 320),
                                                         ["the-scream", "udnie", "starry-night", "composition-vii"]),
    }
    ap.add_argument("--only", nargs="+", choices=list(sheets),
                    default=[name for name in sheets if name != "corpus"],
                    help="render just these (default: all but corpus, which needs the shared corpus)")
    args = ap.parse_args()
    for name in args.only:
        sheets[name](args.size)


if __name__ == "__main__":
    main()
