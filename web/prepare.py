"""Fill web/vendor/ for the browser demo (run by ``make web`` after ``npm ci`` in web/).

Copies onnxruntime-web's wasm runtime (ESM loader, Emscripten glue, .wasm) out of web/node_modules,
the stylization model(s), model.json with what the page needs from their ``painterly`` metadata (styles,
``stats_size``, precision; onnxruntime-web does not expose metadata_props), thumbnails of the bundled
paintings the styles come from, and the bundled sample photos.

    python web/prepare.py [--model painterly/pretrained/multistyle.int8.onnx [--model other.onnx ...]]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from painterly.errors import PainterlyError  # noqa: E402
from painterly.imageio import read_image, resize_longest, save_image  # noqa: E402
from painterly.onnxfile import read_onnx_metadata  # noqa: E402
from painterly.paintings import bundled_painting, painting_names  # noqa: E402

DEFAULT_MODEL = ROOT / "painterly" / "pretrained" / "multistyle.int8.onnx"
ORT_DIST = WEB / "node_modules" / "onnxruntime-web" / "dist"
#: The wasm-only ESM build, the Emscripten glue it imports and its (SIMD, threads-capable) wasm.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PHOTOS = ROOT / "painterly" / "assets" / "photos"
THUMB = 160


def copy_runtime(dest: Path, dist: Path = ORT_DIST) -> None:
    missing = [f for f in ORT_FILES if not (dist / f).is_file()]
    if missing:
        raise PainterlyError(f"onnxruntime-web files missing in {dist} ({', '.join(missing)}): run 'npm ci' in web/")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ORT_FILES:
        shutil.copy2(dist / name, dest / name)


def model_info(path: Path) -> dict:
    """What the page needs from a stylization graph's metadata."""
    meta = read_onnx_metadata(path, kind="stylize")
    return {"file": f"model/{path.name}", "precision": meta["precision"], "bytes": path.stat().st_size,
            "label": model_label(path, meta["precision"]),
            "stats_size": meta["stats_size"],
            "styles": [{k: str(s.get(k, "")) for k in ("name", "title", "artist", "source")} for s in meta["styles"]]}


def write_thumbnails(styles: list[dict], dest: Path) -> None:
    """A small JPEG of each style that is a bundled painting; sets ``thumb`` on those styles."""
    dest.mkdir(parents=True, exist_ok=True)
    bundled = set(painting_names())
    for style in styles:
        if style["name"] in bundled:
            img = resize_longest(read_image(bundled_painting(style["name"])).rgb, THUMB)
            save_image(img, dest / f"{style['name']}.jpg")
            style["thumb"] = f"thumbs/{style['name']}.jpg"


def default_models() -> list[Path]:
    """The shipped stylization graphs the page offers, the default first: the slim student's int8 graph
    where it is shipped, the full network's int8 graph, and its fp32 one."""
    names = ("multistyle_slim.int8.onnx", DEFAULT_MODEL.name, "multistyle.fp32.onnx")
    return [p for p in (DEFAULT_MODEL.with_name(n) for n in names) if p == DEFAULT_MODEL or p.is_file()]


def model_label(path: Path, precision: str) -> str:
    """What the page calls a model: "slim int8" for multistyle_slim.int8.onnx, "full fp32" for
    multistyle.fp32.onnx, else the file's stem."""
    stem = path.name.split(".")[0]
    kind = {"multistyle": "full", "multistyle_slim": "slim"}.get(stem, stem)
    return f"{kind} {precision}"


def prepare(models: list[Path] | None = None, out: Path = WEB / "vendor", dist: Path = ORT_DIST) -> dict:
    """Build ``out`` (runtime, models, model.json, thumbnails, sample photos); returns model.json's content.

    ``models``: stylization graphs with the same styles (default :func:`default_models`); the first is the
    page's default.
    """
    models = list(models or default_models())
    for model in models:
        if not model.is_file():
            raise PainterlyError(f"model '{model}' not found: export it with 'painterly export' or pass --model FILE")
    entries = [model_info(m) for m in models]
    first = entries[0]
    for model, entry in zip(models, entries, strict=True):
        if entry["styles"] != first["styles"]:  # networks of other widths are fine: stats_size is per model
            raise PainterlyError(f"'{model}' has other styles than '{models[0]}': give models with the same styles")
    if len({e["file"] for e in entries}) != len(entries):
        raise PainterlyError("two models with the same file name")
    copy_runtime(out / "ort", dist)
    shutil.rmtree(out / "model", ignore_errors=True)
    (out / "model").mkdir(parents=True)
    for model in models:
        shutil.copy2(model, out / "model" / model.name)
    styles = first["styles"]
    write_thumbnails(styles, out / "thumbs")
    (out / "photos").mkdir(exist_ok=True)
    photos = []
    for photo in sorted(PHOTOS.glob("*.jpg")):
        shutil.copy2(photo, out / "photos" / photo.name)
        photos.append(f"photos/{photo.name}")
    info = {"styles": styles, "stats_size": first["stats_size"], "photos": photos,
            "models": [{k: e[k] for k in ("file", "label", "precision", "bytes", "stats_size")} for e in entries]}
    (out / "model.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", dest="models",
                        help="stylization ONNX file; repeat for a choice of models, the first is the default "
                             "(default: the shipped multistyle_slim.int8.onnx if present, multistyle.int8.onnx, "
                             "and multistyle.fp32.onnx if present)")
    parser.add_argument("--out", type=Path, default=WEB / "vendor", help="output folder (default web/vendor)")
    args = parser.parse_args(argv)
    try:
        info = prepare(args.models, args.out)
    except PainterlyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    models = ", ".join(f"{m['file']} ({m['label']}, {m['bytes'] / 2**20:.1f} MiB)" for m in info["models"])
    print(f"{args.out}: onnxruntime-web, {models}; {len(info['styles'])} styles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
