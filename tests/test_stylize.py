"""painterly.stylize / list_styles, tiled inference, and the stylize/styles commands."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import painterly
from painterly.cli import main
from painterly.engines.tiling import axis_tiles, axis_weights
from painterly.engines.torch import run_network
from painterly.errors import ModelError, PainterlyError, StyleNotFoundError
from painterly.methods import stylize as stylize_mod
from painterly.methods.stylize import get_model, list_styles, stylize
from painterly.models.io import StylizationModel, save_model
from painterly.models.transformer import TransformerConfig, TransformerNet
from painterly.styles import StyleInfo


def _tiny_model(num_residual: int = 1, seed: int = 0) -> StylizationModel:
    torch.manual_seed(seed)
    net = TransformerNet(TransformerConfig(channels=(8, 8, 8), num_residual=num_residual, num_styles=3, stem_kernel=3))
    for m in net.norms():
        m.gamma.data.uniform_(0.5, 1.5)
        m.beta.data.uniform_(-0.5, 0.5)
    styles = [StyleInfo("starry-night", "The Starry Night", "Vincent van Gogh"), StyleInfo("udnie", "Udnie", "Picabia"),
              StyleInfo("plain")]
    return StylizationModel(net.eval(), styles)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return save_model(_tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture()
def photo() -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray((rng.random((37, 50, 3)) * 255).astype(np.uint8))


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def test_output_keeps_size_and_mode(model_path, photo):
    out = stylize(photo, "udnie", model=model_path)
    assert out.size == photo.size and out.mode == "RGB"
    assert stylize(photo, "udnie", size=24, model=model_path).size == (24, 18)


def test_torch_engine_keeps_freed_memory_on_cpu(model_path, photo, monkeypatch):
    """The torch engine asks glibc to keep freed activation buffers (a quarter of a 1024 px stylization)."""
    from painterly.engines import torch as torch_engine

    calls = []
    monkeypatch.setattr(torch_engine, "keep_freed_memory", lambda: calls.append(1))
    stylize(photo, "udnie", model=model_path, engine="torch", device="cpu")
    assert calls


def test_styles_differ_and_mixing_is_normalised(model_path, photo):
    a = stylize(photo, "starry-night", model=model_path, precision="fp32")
    b = stylize(photo, "udnie", model=model_path, precision="fp32")
    assert np.abs(_arr(a) - _arr(b)).mean() > 2
    m1 = stylize(photo, {"starry-night": 1, "udnie": 3}, model=model_path, precision="fp32")
    m2 = stylize(photo, {"starry-night": 0.25, "udnie": 0.75}, model=model_path, precision="fp32")
    assert np.array_equal(_arr(m1), _arr(m2))
    assert np.abs(_arr(m1) - _arr(a)).mean() > 1 and np.abs(_arr(m1) - _arr(b)).mean() > 0.5
    assert np.array_equal(_arr(stylize(photo, ["udnie", "plain"], model=model_path, precision="fp32")),
                          _arr(stylize(photo, {"udnie": 2, "plain": 2}, model=model_path, precision="fp32")))


def test_strength_blends_with_photo(model_path, photo):
    assert np.array_equal(_arr(stylize(photo, "udnie", strength=0.0, model=model_path)), _arr(photo))
    full = _arr(stylize(photo, "udnie", model=model_path))
    half = _arr(stylize(photo, "udnie", strength=0.5, model=model_path))
    assert np.abs(half - (full + _arr(photo)) / 2).max() <= 1.0
    with pytest.raises(PainterlyError, match="strength"):
        stylize(photo, "udnie", strength=1.5, model=model_path)


def test_preserve_color_keeps_photo_chroma(model_path, photo):
    out = stylize(photo, "udnie", preserve_color="luminance", model=model_path)
    cb_out = _arr(out.convert("YCbCr"))[..., 1:]
    cb_photo = _arr(photo.convert("YCbCr"))[..., 1:]
    cb_plain = _arr(stylize(photo, "udnie", model=model_path).convert("YCbCr"))[..., 1:]
    assert np.abs(cb_out - cb_photo).mean() < np.abs(cb_plain - cb_photo).mean() / 2


def test_alpha_and_exif_orientation(model_path, tmp_path, photo):
    rgba = photo.convert("RGBA")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 50, dtype=np.uint8), (37, 1)))
    rgba.putalpha(alpha)
    out = stylize(rgba, "udnie", model=model_path)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    path = tmp_path / "rotated.jpg"
    photo.save(path, exif=exif)
    assert stylize(path, "udnie", model=model_path).size == (37, 50)


def test_unknown_style_and_list_styles(model_path, photo):
    with pytest.raises(StyleNotFoundError, match="available: starry-night, udnie, plain"):
        stylize(photo, "mona-lisa", model=model_path)
    with pytest.raises(StyleNotFoundError, match="choose a style"):
        stylize(photo, model=model_path)
    styles = list_styles(model_path)
    assert [s.name for s in styles] == ["starry-night", "udnie", "plain"]
    assert styles[0].title == "The Starry Night" and styles[0].artist == "Vincent van Gogh"
    assert painterly.list_styles is list_styles and painterly.stylize is stylize


def test_missing_default_model_explains(monkeypatch, tmp_path, photo):
    monkeypatch.setattr(stylize_mod, "PRETRAINED_DIR", tmp_path)
    monkeypatch.setattr(stylize_mod, "DEFAULT_MODEL", tmp_path / "nope.safetensors")
    with pytest.raises(ModelError, match="painterly train"):
        stylize(photo, "udnie")
    with pytest.raises(ModelError, match="not found"):
        get_model(tmp_path / "other.safetensors")


# -- tiling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1000, 148, 152, 196, 240])  # padded sizes: multiples of 4
def test_tile_weights_partition_unity(length):
    tile, overlap = 96, 48
    tiles = axis_tiles(length, tile, overlap)
    assert tiles[0][0] == 0 and tiles[-1][1] == length and all(s % 4 == 0 for s, _ in tiles)
    assert all(a[1] - b[0] >= overlap for a, b in zip(tiles, tiles[1:], strict=False))
    acc = np.zeros(length)
    for (s, e), w in zip(tiles, axis_weights(tiles, overlap), strict=True):
        acc[s:e] += w
        if s > 0:
            assert float(np.abs(w[: overlap // 3]).max()) == 0.0  # the inner edge of a tile gets no weight
        if e < length:
            assert float(np.abs(w[-(overlap // 3) :]).max()) == 0.0
    np.testing.assert_allclose(acc, np.ones(length), atol=1e-6)


def test_tiled_matches_untiled():
    model = _tiny_model(num_residual=2)
    torch.manual_seed(3)
    small = torch.rand(1, 3, 30, 34)
    x = torch.nn.functional.interpolate(small, size=(240, 272), mode="bilinear", align_corners=False)
    style = model.style_weights({"starry-night": 0.6, "udnie": 0.4})
    ref = run_network(model.net, x, style, dtype=None, tile_size=10_000)
    tiled = run_network(model.net, x, style, dtype=None, tile_size=144, overlap=96)
    # fp32 rounding differs between the fused and the frozen-statistics norm paths and between
    # convolution shapes (up to ~2e-4 seen); a seam or a wrong tile weight is > 1e-2.
    assert (tiled - ref).abs().max() < 1e-3


def test_tiled_flat_colour_has_no_seams():
    model = _tiny_model(num_residual=2)
    x = torch.tensor([0.8, 0.4, 0.2]).view(1, 3, 1, 1).expand(1, 3, 300, 260).contiguous()
    out = run_network(model.net, x, model.style_weights("udnie"), dtype=None, tile_size=128, overlap=48,
                      stats_size=128)
    # a flat image must stay flat: compare every pixel with the centre one
    centre = out[..., 150:151, 130:131]
    assert (out - centre).abs().max() < 1e-4


def test_large_image_bounded_memory(model_path, tmp_path):
    """A 4096x4096 image is stylized in tiles (the network sees every pixel) within 4 GB of peak memory."""
    script = textwrap.dedent(f"""
        import resource, numpy as np, torch
        from PIL import Image
        from painterly.methods.stylize import stylize
        torch.set_num_threads(2)
        img = Image.fromarray(np.full((4096, 4096, 3), 120, np.uint8))
        out = stylize(img, "udnie", model={str(model_path)!r}, stroke_scale=None)
        assert out.size == (4096, 4096)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mib = int(proc.stdout.split()[-1]) / 1024
    assert peak_mib < 4096, f"peak RSS {peak_mib:.0f} MiB"


# -- command line ----------------------------------------------------------------------------


def test_cli_stylize_file_and_folder(model_path, photo, tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    photo.save(src / "a.jpg")
    photo.save(src / "sub" / "b.png")
    out = tmp_path / "one.png"
    assert main(["stylize", str(src / "a.jpg"), "--style", "udnie", "-o", str(out), "--model", str(model_path)]) == 0
    assert Image.open(out).size == photo.size
    code = main(["stylize", str(src), "--style", "udnie=0.7", "--style", "plain=0.3", "--out-dir",
                 str(tmp_path / "outs"), "--model", str(model_path), "--size", "32"])
    assert code == 0
    made = sorted(str(p.relative_to(tmp_path / "outs")) for p in (tmp_path / "outs").rglob("*.*"))
    assert made == ["a-udnie+plain.jpg", "sub/b-udnie+plain.png"]
    assert max(Image.open(tmp_path / "outs" / "a-udnie+plain.jpg").size) == 32
    capsys.readouterr()


def test_cli_stylize_errors(model_path, photo, tmp_path, capsys):
    photo.save(tmp_path / "a.png")
    args = ["stylize", str(tmp_path / "a.png"), "--model", str(model_path), "-o", str(tmp_path / "o.png")]
    assert main([*args, "--style", "mona-lisa"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown style 'mona-lisa'" in err and "starry-night, udnie, plain" in err
    assert main([*args, "--style", "udnie=abc"]) == 2
    assert "not a number" in capsys.readouterr().err
    assert main(["stylize", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--style", "udnie", "--model",
                 str(model_path), "-o", str(tmp_path / "o.png")]) == 2
    assert "-o takes one input" in capsys.readouterr().err
    assert main(["stylize", str(tmp_path / "missing.png"), "--style", "udnie", "--model", str(model_path), "-o",
                 str(tmp_path / "o.png")]) == 2
    assert not (tmp_path / "o.png").exists()


def test_cli_styles_lists_and_sheet(model_path, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["styles", "--model", str(model_path), "--sheet", str(sheet), "--size", "64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("starry-night") and "Vincent van Gogh" in out[0] and out[2].strip() == "plain"
    img = Image.open(sheet)
    assert img.width > 3 * 64 and img.height > 40


@pytest.mark.parametrize("size", [(1, 1), (3, 40), (90, 5)])
def test_tiny_and_thin_images_are_stylized_at_their_size(model_path, size):
    """Images smaller than the network's padding allows are processed upscaled, then resized back."""
    rng = np.random.default_rng(2)
    img = Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))
    out = stylize(img, "udnie", model=model_path)
    assert out.size == size and out.mode == "RGB"


def test_tiled_thin_image_statistics_proxy_is_not_too_small():
    model = _tiny_model()
    x = torch.rand(1, 3, 16, 600)  # its 128 px statistics proxy would be 4 px high
    out = run_network(model.net, x, model.style_weights("udnie"), dtype=None, tile_size=64, overlap=24,
                      stats_size=128)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_quality_picks_the_slim_student_for_fast_and_the_full_model_for_high(tmp_path, monkeypatch):
    from painterly.methods import stylize as st
    from painterly.methods import transfer as tr

    for name in ("multistyle.int8.onnx", "multistyle.fp32.onnx", "multistyle_slim.int8.onnx",
                 "adain_decoder.int8.onnx", "adain_decoder_slim.safetensors", "adain_decoder.safetensors"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(st, "PRETRAINED_DIR", tmp_path)
    monkeypatch.setattr(tr, "PRETRAINED_DIR", tmp_path)
    assert st._shipped("fast") == (tmp_path / "multistyle_slim.int8.onnx", None)
    assert st._shipped("high") == (tmp_path / "multistyle.fp32.onnx", None)
    assert tr._shipped_file(tr.TORCH_DECODERS, "fast").name == "adain_decoder_slim.safetensors"
    assert tr._shipped_file(tr.TORCH_DECODERS, "high").name == "adain_decoder.safetensors"
    assert tr._shipped_file(tr.ONNX_DECODERS, "high").name == "adain_decoder.int8.onnx"  # no fp32 graph here
    (tmp_path / "multistyle_slim.int8.onnx").unlink()
    assert st._shipped("fast")[0].name == "multistyle.int8.onnx"  # no slim student: the full int8 model
