"""The onnxruntime engine: agreement with torch, tiling, the torch-free install, errors, engine choice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import export_adain, export_stylize, lively_decoder, random_photo
from PIL import Image
from test_stylize import _tiny_model

import painterly
from painterly.cli import main
from painterly.engines import choose
from painterly.engines.onnx import OnnxAdaIN, OnnxStylizer, load_stylizer
from painterly.engines.torch import TorchStylizer
from painterly.errors import ModelError, PainterlyError
from painterly.models.adain import save_decoder
from painterly.models.io import save_model

ROOT = Path(__file__).resolve().parent.parent

# A stand-in for a machine without torch: `import torch` raises ImportError (run before painterly is imported).
NO_TORCH = textwrap.dedent("""
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, _NoTorch())
""")


def _run_python(code: str, no_torch: bool = True) -> subprocess.CompletedProcess:
    script = (NO_TORCH if no_torch else "") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, cwd=ROOT)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A tiny 3-style model (.safetensors and .onnx), a tiny AdaIN (decoder .safetensors, encoder/decoder .onnx)
    and two photos and paintings."""
    root = tmp_path_factory.mktemp("engine")
    model = _tiny_model(num_residual=2)
    save_model(model, root / "tiny.safetensors")
    export_stylize(model, root / "tiny.onnx")
    decoder = lively_decoder()
    save_decoder(decoder, root / "dec.safetensors")
    shipped = root / "pretrained"
    shipped.mkdir()
    enc, dec = export_adain(decoder, shipped)
    enc.rename(shipped / "vgg19_relu4_1.fp32.onnx")
    dec.rename(shipped / "adain_decoder.fp32.onnx")
    Image.fromarray(random_photo(44, 60, seed=1)).save(root / "photo.png")
    Image.fromarray(random_photo(40, 40, seed=2)).save(root / "s1.png")
    Image.fromarray(np.full((32, 32, 3), (200, 40, 30), dtype=np.uint8)).save(root / "s2.png")
    return root


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def _onnx_adain(files: Path) -> OnnxAdaIN:
    return OnnxAdaIN(files / "pretrained" / "vgg19_relu4_1.fp32.onnx", files / "pretrained" / "adain_decoder.fp32.onnx")


# -- agreement with the torch engine -------------------------------------------------------------


@pytest.mark.parametrize("style", ["udnie", {"starry-night": 0.3, "udnie": 0.5, "plain": 0.2}])
def test_stylize_onnx_matches_torch(files, style):
    photo = files / "photo.png"
    onnx = painterly.stylize(photo, style, model=files / "tiny.onnx")
    ref = painterly.stylize(photo, style, model=files / "tiny.safetensors", precision="fp32")
    assert np.abs(_arr(onnx) - _arr(ref)).max() <= 1
    assert painterly.list_styles(files / "tiny.onnx") == painterly.list_styles(files / "tiny.safetensors")


def test_tiled_onnx_matches_untiled_and_torch(files):
    stylizer = load_stylizer(files / "tiny.onnx")
    x = random_photo(200, 236, seed=3).transpose(2, 0, 1)[None].astype(np.float32) / 255
    w = stylizer.style_weights({"starry-night": 0.6, "udnie": 0.4})
    whole = stylizer.run(x, w, tile_size=10_000)
    tiled = stylizer.run(x, w, tile_size=144, overlap=96, stats_size=10_000)
    # frozen statistics from the whole image: tiles match it everywhere up to float rounding
    assert np.abs(tiled - whole).max() < 1e-3
    proxy = stylizer.run(x, w, tile_size=144, overlap=96, stats_size=96)  # statistics from a downscaled copy
    torch_proxy = TorchStylizer(_tiny_model(num_residual=2), "cpu", "fp32").run(x, w, tile_size=144, overlap=96,
                                                                                  stats_size=96)
    assert np.abs(proxy - torch_proxy).max() < 2e-2  # the two proxies are resized by different filters
    flat = np.broadcast_to(np.array([0.8, 0.4, 0.2], np.float32).reshape(1, 3, 1, 1), (1, 3, 300, 260)).copy()
    out = stylizer.run(flat, w, tile_size=128, overlap=48, stats_size=128)
    assert np.abs(out - out[..., 150:151, 130:131]).max() < 1e-4  # a flat image stays flat: no seams


def test_transfer_onnx_matches_torch(files, tmp_path):
    ref_kw = dict(model=files / "dec.safetensors", precision="fp32", device="cpu")
    onnx = _onnx_adain(files)
    photo, s1, s2 = files / "photo.png", files / "s1.png", files / "s2.png"
    half = Image.new("L", (60, 44), 0)
    half.paste(255, (0, 0, 30, 44))
    half.save(tmp_path / "half.png")
    cases = [dict(style=s1), dict(style=[s1, s2], style_weights=[1, 3], alpha=0.6),
             dict(style=[s1, s2], mask=tmp_path / "half.png"), dict(style=s1, mask=tmp_path / "half.png")]
    for kw in cases:
        a = painterly.transfer(photo, model=onnx, **kw)
        b = painterly.transfer(photo, **ref_kw, **kw)
        assert a.size == b.size == (60, 44)
        assert np.abs(_arr(a) - _arr(b)).max() <= 2, kw
    styled = _arr(painterly.transfer(photo, s1, model=onnx))
    assert np.abs(styled - _arr(painterly.transfer(photo, s2, model=onnx))).mean() > 1  # styles matter


# -- the same options and image handling as the torch path ------------------------------------


def test_onnx_alpha_exif_tiny_strength_and_colour(files, tmp_path):
    model = files / "tiny.onnx"
    photo = Image.open(files / "photo.png").convert("RGB")
    rgba = photo.convert("RGBA")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 60, dtype=np.uint8), (44, 1)))
    rgba.putalpha(alpha)
    out = painterly.stylize(rgba, "udnie", model=model)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    photo.save(tmp_path / "rotated.jpg", exif=exif)
    assert painterly.stylize(tmp_path / "rotated.jpg", "udnie", model=model).size == (44, 60)
    for size in [(1, 1), (3, 40), (90, 5)]:
        assert painterly.stylize(photo.resize(size), "udnie", model=model).size == size
    assert np.array_equal(_arr(painterly.stylize(photo, "udnie", strength=0.0, model=model)), _arr(photo))
    kept = painterly.stylize(photo, "udnie", preserve_color="luminance", model=model)
    plain = painterly.stylize(photo, "udnie", model=model)
    chroma = _arr(photo.convert("YCbCr"))[..., 1:]
    assert np.abs(_arr(kept.convert("YCbCr"))[..., 1:] - chroma).mean() < \
        np.abs(_arr(plain.convert("YCbCr"))[..., 1:] - chroma).mean() / 2


def test_engine_and_model_mismatch_errors(files):
    with pytest.raises(PainterlyError, match="ONNX model"):
        painterly.stylize(files / "photo.png", "udnie", model=files / "tiny.onnx", engine="torch")
    with pytest.raises(PainterlyError, match="torch model"):
        painterly.stylize(files / "photo.png", "udnie", model=files / "tiny.safetensors", engine="onnxruntime")
    with pytest.raises(PainterlyError, match="unknown engine"):
        painterly.stylize(files / "photo.png", "udnie", model=files / "tiny.onnx", engine="tpu")
    with pytest.raises(ModelError, match="not a stylize graph"):
        OnnxStylizer(files / "pretrained" / "adain_decoder.fp32.onnx")


def test_cli_onnx_errors_are_one_line(files, tmp_path, capsys):
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    base = ["stylize", str(files / "photo.png"), "--style", "udnie", "-o", str(tmp_path / "o.png")]
    cases = [
        ([*base, "--model", str(tmp_path / "broken.onnx")], "not a valid ONNX"),
        ([*base, "--model", str(files / "pretrained" / "vgg19_relu4_1.fp32.onnx")], "not a stylize graph"),
        (["stylize", str(tmp_path / "bad.png"), "--style", "udnie", "-o", str(tmp_path / "o.png"), "--model",
          str(files / "tiny.onnx")], "cannot read image"),
        ([*base, "--model", str(files / "tiny.onnx"), "--style", "mona-lisa"], "unknown style 'mona-lisa'"),
        ([*base, "--model", str(files / "tiny.onnx"), "--engine", "torch"], "ONNX model"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o.png").exists()


# -- without torch -------------------------------------------------------------------------------


def test_stylize_and_transfer_without_torch(files, tmp_path):
    """The base install (no torch): the API and the commands run on onnxruntime, torch-only ones explain."""
    proc = _run_python(f"""
        from pathlib import Path
        import numpy as np
        import painterly
        import painterly.methods.transfer as transfer_mod
        from painterly.cli import main
        from painterly.engines.onnx import OnnxAdaIN
        files, out = Path({str(files)!r}), Path({str(tmp_path)!r})
        img = painterly.stylize(files / "photo.png", {{"udnie": 1, "plain": 1}}, model=files / "tiny.onnx",
                                tile_size=32, preserve_color="histogram", strength=0.8)
        assert img.size == (60, 44), img.size
        assert [s.name for s in painterly.list_styles(files / "tiny.onnx")] == ["starry-night", "udnie", "plain"]
        adain = OnnxAdaIN(files / "pretrained" / "vgg19_relu4_1.fp32.onnx",
                          files / "pretrained" / "adain_decoder.fp32.onnx")
        img = painterly.transfer(files / "photo.png", [files / "s1.png", "udnie"], style_weights=[2, 1], alpha=0.7,
                                 model=adain)
        assert img.size == (60, 44), img.size
        assert painterly.save_image(painterly.load_image(files / "photo.png"), out / "copy.png").is_file()
        assert len(painterly.list_paintings()) == 10
        transfer_mod.PRETRAINED_DIR = files / "pretrained"  # the shipped graphs, as the package will have them
        codes = [
            main(["stylize", str(files / "photo.png"), "--style", "udnie", "--model", str(files / "tiny.onnx"),
                  "-o", str(out / "a.png")]),
            main(["transfer", str(files / "photo.png"), "--style", "udnie", "-o", str(out / "b.png")]),
            main(["styles", "--model", str(files / "tiny.onnx")]),
            main(["paintings"]),
            main(["transfer", str(files / "photo.png"), "--style", "udnie", "-o", str(out / "c.png"),
                  "--method", "meta"]),
            main(["optimize", str(files / "photo.png"), "--style", "udnie", "-o", str(out / "d.png")]),
            main(["stylize", str(files / "photo.png"), "--style", "udnie", "--model", str(files / "tiny.safetensors"),
                  "-o", str(out / "e.png")]),
            main(["export", "shipped", "-o", str(out / "f.onnx")]),
        ]
        print("CODES", codes)
        try:
            painterly.optimize
        except ImportError as exc:
            print("LAZY", exc)
        import sys
        print("TORCH", "torch" in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CODES [0, 0, 0, 0, 2, 2, 2, 2]" in proc.stdout and "TORCH False" in proc.stdout
    assert "LAZY painterly.optimize needs PyTorch" in proc.stdout
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("painterly: error: ") and "PyTorch" in e for e in errors), errors
    assert (tmp_path / "a.png").is_file() and (tmp_path / "b.png").is_file() and not (tmp_path / "c.png").exists()


def test_onnx_commands_do_not_import_torch(files, tmp_path):
    """With torch installed, an ONNX stylize still never loads it (startup time)."""
    proc = _run_python(f"""
        import sys
        from painterly.cli import main
        code = main(["stylize", {str(files / "photo.png")!r}, "--style", "udnie", "--model",
                     {str(files / "tiny.onnx")!r}, "-o", {str(tmp_path / "a.png")!r}])
        print("RESULT", code, "torch" in sys.modules)
    """, no_torch=False)
    assert "RESULT 0 False" in proc.stdout, proc.stderr[-2000:]


# -- engine choice -------------------------------------------------------------------------------


def test_fastest_measures_once_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PAINTERLY_ENGINE", raising=False)
    calls = {"onnxruntime": 0, "torch": 0}

    def runner(name: str, seconds: float):
        def run():
            calls[name] += 1
            if seconds:
                import time

                time.sleep(seconds)
        return run

    made = []

    def factory(name: str, seconds: float):
        def make():
            made.append(name)
            return runner(name, seconds)
        return make

    runners = {"onnxruntime": factory("onnxruntime", 0.0), "torch": factory("torch", 0.01)}
    assert choose.fastest("task A", runners) == "onnxruntime" and made == ["onnxruntime", "torch"]
    assert calls == {"onnxruntime": 4, "torch": 4}  # one warm-up and three timed runs each
    assert choose.fastest("task A", runners) == "onnxruntime" and len(made) == 2  # cached: nothing loaded or run
    data = json.loads((tmp_path / "cache" / "engines.json").read_text())
    (key, entry), = data.items()
    assert key.startswith("task A | ") and choose.cpu_model() in key and "onnxruntime" in key
    assert entry["engine"] == "onnxruntime" and set(entry["seconds"]) == {"onnxruntime", "torch"}
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name != "engines.json"]  # no temporary files left
    monkeypatch.setenv("PAINTERLY_ENGINE", "torch")
    assert choose.fastest("task A", runners) == "torch"
    assert choose.fastest("task B", {"torch": runners["torch"]}) == "torch"


def test_auto_picks_onnxruntime_for_shipped_models_without_torch(files, tmp_path):
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    shutil.copy(files / "tiny.onnx", shipped / "multistyle.fp32.onnx")
    proc = _run_python(f"""
        from pathlib import Path
        import painterly.methods.stylize as stylize_mod
        stylize_mod.PRETRAINED_DIR = Path({str(shipped)!r})
        m = stylize_mod.load_stylizer(quality="high")
        print("ENGINE", m.engine, Path(m.path).name, [s.name for s in stylize_mod.list_styles()])
    """)
    assert "ENGINE onnxruntime multistyle.fp32.onnx ['starry-night', 'udnie', 'plain']" in proc.stdout, proc.stderr


def test_auto_measures_once_then_loads_only_the_winner(files, tmp_path):
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    shutil.copy(files / "tiny.onnx", shipped / "multistyle.fp32.onnx")
    shutil.copy(files / "tiny.safetensors", shipped / "multistyle.safetensors")
    code = f"""
        import os, sys
        from pathlib import Path
        os.environ["PAINTERLY_CACHE"] = {str(tmp_path / "cache")!r}
        import painterly.methods.stylize as stylize_mod
        stylize_mod.PRETRAINED_DIR, stylize_mod.BENCH_SIZE = Path({str(shipped)!r}), 64
        m = stylize_mod.load_stylizer()
        print("ENGINE", m.engine, "torch" in sys.modules)
    """
    first = _run_python(code, no_torch=False)
    assert first.returncode == 0, first.stderr[-2000:]
    engine = first.stdout.split()[1]
    (entry,) = json.loads((tmp_path / "cache" / "engines.json").read_text()).values()
    assert entry["engine"] == engine and set(entry["seconds"]) == {"onnxruntime", "torch"}
    again = _run_python(code, no_torch=False)
    assert f"ENGINE {engine} {engine == 'torch'}" in again.stdout, again.stderr[-2000:]


def test_base_modules_do_not_import_torch():
    proc = _run_python("""
        import sys
        import painterly, painterly.imageio, painterly.color, painterly.styles, painterly.paintings, painterly.errors
        import painterly.methods.stylize, painterly.methods.transfer, painterly.engines.onnx, painterly.engines.choose
        import painterly.cli.stylize, painterly.cli.transfer, painterly.cli.styles, painterly.cli.paintings
        from painterly.cli import build_parser
        build_parser("stylize")
        print("TORCH", sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """, no_torch=False)
    assert "TORCH []" in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_engine_choice_is_cached_per_onednn_isa_cap(tmp_path, monkeypatch):
    # torch measured under ONEDNN_MAX_CPU_ISA (AMX off, say) is another machine for the engine choice
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PAINTERLY_ENGINE", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    plain = choose.cache_key("task A")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = choose.cache_key("task A")
    assert capped != plain and "avx2" in capped
    slow = {"onnxruntime": lambda: (lambda: None), "torch": lambda: (lambda: __import__("time").sleep(0.01))}
    assert choose.fastest("task A", slow) == "onnxruntime"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    fast = {"onnxruntime": lambda: (lambda: __import__("time").sleep(0.01)), "torch": lambda: (lambda: None)}
    assert choose.fastest("task A", fast) == "torch"  # not the capped run's cached answer
