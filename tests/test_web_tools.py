"""The browser demo's build and serve helpers (web/prepare.py, web/serve.py) and its JS image operations
(web/imageops.js, run in Node.js when present) against Pillow and painterly. No browser needed."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.errors import PainterlyError

WEB = Path(__file__).resolve().parent.parent / "web"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"painterly_web_{name}", WEB / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_model(path: Path, styles: list[str], precision: str = "int8", stats: int = 8) -> Path:
    """A minimal graph with the stylization interface and painterly metadata (outputs = inputs)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("image", f, [1, 3, "H", "W"]),
              helper.make_tensor_value_info("style", f, [1, len(styles)]),
              helper.make_tensor_value_info("stats", f, [1, stats]),
              helper.make_tensor_value_info("use_stats", f, [1])]
    outputs = [helper.make_tensor_value_info("output", f, [1, 3, "H", "W"]),
               helper.make_tensor_value_info("stats_out", f, [1, stats])]
    nodes = [helper.make_node("Identity", ["image"], ["output"]),
             helper.make_node("Identity", ["stats"], ["stats_out"])]
    model = helper.make_model(helper.make_graph(nodes, "fake", inputs, outputs))
    meta = {"format": "painterly.onnx.stylize.v1", "kind": "stylize", "precision": precision, "stats_size": stats,
            "config": {}, "styles": [{"name": n, "title": n.title(), "artist": "x", "source": ""} for n in styles]}
    helper.set_model_props(model, {"painterly": json.dumps(meta)})
    onnx.save(model, path)
    return path


@pytest.fixture
def dist(tmp_path) -> Path:
    d = tmp_path / "dist"
    d.mkdir()
    for name in _load("prepare").ORT_FILES:
        (d / name).write_bytes(b"runtime " + name.encode())
    return d


def test_prepare_writes_vendor(tmp_path, dist):
    prepare = _load("prepare")
    int8 = _fake_model(tmp_path / "m.int8.onnx", ["udnie", "my-style"])
    fp32 = _fake_model(tmp_path / "m.fp32.onnx", ["udnie", "my-style"], "fp32")
    out = tmp_path / "vendor"
    info = prepare.prepare([int8, fp32], out, dist)
    assert info == json.loads((out / "model.json").read_text())
    assert [m["file"] for m in info["models"]] == ["model/m.int8.onnx", "model/m.fp32.onnx"]
    assert [m["precision"] for m in info["models"]] == ["int8", "fp32"]
    assert [m["label"] for m in info["models"]] == ["m int8", "m fp32"]
    assert info["models"][0]["bytes"] == int8.stat().st_size and info["stats_size"] == 8
    assert [s["name"] for s in info["styles"]] == ["udnie", "my-style"]
    assert info["styles"][0]["thumb"] == "thumbs/udnie.jpg" and "thumb" not in info["styles"][1]
    assert Image.open(out / "thumbs" / "udnie.jpg").size[0] <= prepare.THUMB
    assert info["photos"] and all((out / p).is_file() for p in info["photos"])
    for name in prepare.ORT_FILES:
        assert (out / "ort" / name).read_bytes() == (dist / name).read_bytes()
    assert prepare.model_label(Path("multistyle_slim.int8.onnx"), "int8") == "slim int8"
    assert prepare.model_label(Path("multistyle.fp32.onnx"), "fp32") == "full fp32"
    shipped = prepare.default_models()  # the full int8 graph always; the slim one first where shipped
    assert prepare.DEFAULT_MODEL in shipped and shipped[0].name.startswith("multistyle")
    assert (shipped[0].name == "multistyle_slim.int8.onnx") == prepare.DEFAULT_MODEL.with_name(
        "multistyle_slim.int8.onnx").is_file()
    # Networks of other widths (a slim student next to the full model) have other stats sizes: kept per model.
    slim = _fake_model(tmp_path / "s.int8.onnx", ["udnie", "my-style"], stats=4)
    info = prepare.prepare([slim, int8], out, dist)
    assert [m["stats_size"] for m in info["models"]] == [4, 8]
    # A rebuild with one model leaves no stale model behind.
    prepare.prepare([fp32], out, dist)
    assert sorted(p.name for p in (out / "model").iterdir()) == ["m.fp32.onnx"]


def test_prepare_refuses_bad_input(tmp_path, dist):
    prepare = _load("prepare")
    a = _fake_model(tmp_path / "a.onnx", ["udnie", "b"])
    with pytest.raises(PainterlyError, match="not found"):
        prepare.prepare([tmp_path / "missing.onnx"], tmp_path / "v", dist)
    with pytest.raises(PainterlyError, match="other styles"):
        prepare.prepare([a, _fake_model(tmp_path / "b.onnx", ["udnie", "c"])], tmp_path / "v", dist)
    (dist / "ort-wasm-simd-threaded.wasm").unlink()
    with pytest.raises(PainterlyError, match="npm ci"):
        prepare.prepare([a], tmp_path / "v", dist)
    assert prepare.main(["--model", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "v")]) == 2


@pytest.mark.parametrize("isolate", [True, False])
def test_serve_types_and_isolation_headers(tmp_path, isolate):
    for name in ("index.html", "x.wasm", "x.mjs", "m.json"):
        (tmp_path / name).write_bytes(b"{}")
    server = _load("serve").make_server(tmp_path, port=0, isolate=isolate, quiet=True)
    host, port = server.server_address
    assert host == "127.0.0.1" and port > 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name, mime in [("x.wasm", "application/wasm"), ("x.mjs", "text/javascript"), ("", "text/html"),
                           ("m.json", "application/json")]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=10) as res:
                assert res.headers["Content-Type"].split(";")[0] == mime
                assert res.headers.get("Cross-Origin-Opener-Policy") == ("same-origin" if isolate else None)
                assert res.headers.get("Cross-Origin-Embedder-Policy") == ("require-corp" if isolate else None)
    finally:
        server.shutdown()
        server.server_close()


NODE_SCRIPT = """
import * as ops from %s;
const input = JSON.parse(await new Promise((ok) => { let s = ""; process.stdin.on("data", (d) => s += d);
                                                     process.stdin.on("end", () => ok(s)); }));
const img = {width: input.w, height: input.h, data: Uint8ClampedArray.from(input.rgb)};
const other = {width: input.w, height: input.h, data: Uint8ClampedArray.from(input.rgb2)};
const out = {};
const flat = (im) => ({w: im.width, h: im.height, rgb: Array.from(im.data)});
for (const [w, h, f] of input.resizes) out[`${w}x${h}-${f}`] = flat(ops.resize(img, w, h, f));
for (const s of input.longest) out[`longest-${s}`] = flat(ops.resizeLongest(img, s));
out.minside = flat(ops.ensureMinSide(ops.resize(img, input.w, 5, "lanczos"), 16));
const padded = ops.toPaddedTensor(img, 4);
out.padded = {H: padded.height, W: padded.width, t: Array.from(padded.tensor)};
out.fromTensor = flat(ops.fromTensor(Float32Array.from(input.tensor), input.h, input.w, input.w - 3, input.h - 2));
out.blend = flat(ops.blend(img, other, input.strength));
process.stdout.write(JSON.stringify(out));
"""


def test_imageops_js_matches_pillow_and_painterly():
    """imageops.js (in Node.js) equals Pillow's resize and Image.blend and painterly's padding and rounding."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js (node) to run web/imageops.js")
    import torch

    from painterly.imageio import ensure_min_side, resize_longest, to_pil, to_tensor
    from painterly.models.transformer import pad_to_multiple

    rng = np.random.default_rng(0)
    w, h = 37, 23
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgb[5:15, 10:20] = 250  # flat areas and hard edges, where ringing and clipping show
    rgb2 = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    tensor = rng.uniform(-0.1, 1.1, (3, h, w)).astype(np.float32)
    tensor[0, 0, :4] = [0.5 / 255, 1.5 / 255, 2.5 / 255, np.nan]  # halves round to even; NaN -> 0
    # Both passes, one pass, growing one way and shrinking the other, and Pillow's vertical-first cases
    # (the height loses more than twice the width's pixels: (31, 3), (101, 7), (36, 2)) and one just short of it.
    resizes = [(17, 11, "lanczos"), (80, 50, "bicubic"), (37, 9, "lanczos"), (12, 23, "bicubic"), (101, 7, "lanczos"),
               (31, 3, "lanczos"), (36, 2, "bicubic"), (30, 9, "lanczos"), (20, 60, "lanczos"), (60, 20, "bicubic")]
    payload = {"w": w, "h": h, "rgb": rgb.ravel().tolist(), "rgb2": rgb2.ravel().tolist(), "resizes": resizes,
               "longest": [16, 30, 64], "tensor": [float(v) for v in tensor.ravel()], "strength": 0.37}
    payload["tensor"][3] = "NaN"  # JSON has no NaN; Float32Array.from(["NaN"]) has
    script = NODE_SCRIPT % json.dumps((WEB / "imageops.js").as_uri())
    run = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(payload), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    def js(key: str) -> np.ndarray:
        o = out[key]
        return np.asarray(o["rgb"], np.uint8).reshape(o["h"], o["w"], 3)

    img = Image.fromarray(rgb)
    filters = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC}
    for rw, rh, f in resizes:
        expected = np.asarray(img.resize((rw, rh), filters[f]))
        np.testing.assert_array_equal(js(f"{rw}x{rh}-{f}"), expected, f"{f} {rw}x{rh}")
    for s in (16, 30, 64):
        np.testing.assert_array_equal(js(f"longest-{s}"), np.asarray(resize_longest(img, s)))
    np.testing.assert_array_equal(js("minside"), np.asarray(ensure_min_side(img.resize((w, 5), filters["lanczos"]))))
    padded, _ = pad_to_multiple(to_tensor(img), 4)
    assert (out["padded"]["H"], out["padded"]["W"]) == (24, 40)
    np.testing.assert_array_equal(np.asarray(out["padded"]["t"], np.float32).reshape(1, 3, 24, 40), padded.numpy())
    crop = torch.from_numpy(tensor)[None, :, : h - 2, : w - 3]
    np.testing.assert_array_equal(js("fromTensor"), np.asarray(to_pil(crop)))
    np.testing.assert_array_equal(js("blend"), np.asarray(Image.blend(img, Image.fromarray(rgb2), 0.37)))
