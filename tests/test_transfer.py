"""`painterly.transfer` and `painterly transfer`: controls, masks, methods and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx_fixtures import lively_decoder
from PIL import Image

import painterly
from painterly.cli import COMMANDS, main
from painterly.errors import PainterlyError
from painterly.models.adain import save_decoder
from painterly.models.io import load_model
from painterly.models.meta import MetaConfig, MetaNetwork, save_meta

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48]
    photo = np.stack([xx * 5, yy * 6, (xx + yy) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    Image.fromarray(photo).save(root / "photo.png")
    Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(root / "s1.png")
    Image.fromarray(np.full((30, 30, 3), (200, 40, 30), dtype=np.uint8)).save(root / "s2.png")
    decoder = lively_decoder()
    save_decoder(decoder, root / "dec.safetensors")
    save_meta(MetaNetwork(MetaConfig(group_hidden=4)), root / "meta.safetensors")
    return root


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def run_transfer(files, **kw):
    kw.setdefault("model", files / "dec.safetensors")
    kw.setdefault("precision", "fp32")
    kw.setdefault("device", "cpu")
    return painterly.transfer(files / "photo.png", kw.pop("style", files / "s1.png"), **kw)


def test_transfer_returns_an_image_of_the_photo_size(files):
    out = run_transfer(files)
    assert out.size == (48, 40) and out.mode == "RGB"
    assert run_transfer(files, size=32).size == (32, 27)


def test_alpha_trades_style_for_content(files):
    full, none = _arr(run_transfer(files, alpha=1.0)), _arr(run_transfer(files, alpha=0.0))
    assert np.abs(full - none).mean() > 0.5


def test_mask_regions_get_their_styles(files, tmp_path):
    two = [files / "s1.png", files / "s2.png"]
    Image.new("L", (48, 40), 255).save(tmp_path / "white.png")
    Image.new("L", (96, 80), 0).save(tmp_path / "black.png")  # same aspect ratio, other size: accepted
    white = _arr(run_transfer(files, style=two, mask=tmp_path / "white.png"))
    black = _arr(run_transfer(files, style=two, mask=tmp_path / "black.png"))
    first, second = _arr(run_transfer(files, style=two[0])), _arr(run_transfer(files, style=two[1]))
    assert np.abs(white - first).max() <= 2 and np.abs(black - second).max() <= 2
    assert np.abs(first - second).mean() > 0.5
    half = Image.new("L", (48, 40), 0)
    half.paste(255, (0, 0, 24, 40))
    half.save(tmp_path / "half.png")
    split = _arr(run_transfer(files, style=two, mask=tmp_path / "half.png"))
    assert np.abs(split[:, :8] - first[:, :8]).mean() < np.abs(split[:, :8] - second[:, :8]).mean()
    assert np.abs(split[:, -8:] - second[:, -8:]).mean() < np.abs(split[:, -8:] - first[:, -8:]).mean()


def test_style_weights_and_mask_cannot_be_combined(files, tmp_path):
    Image.new("L", (48, 40), 255).save(tmp_path / "m.png")
    with pytest.raises(PainterlyError, match="mask"):
        run_transfer(files, style=[files / "s1.png", files / "s2.png"], style_weights=[1, 2], mask=tmp_path / "m.png")
    with pytest.raises(PainterlyError, match="weights"):
        run_transfer(files, style=[files / "s1.png", files / "s2.png"], style_weights=[1])


def test_preserve_color_luminance_keeps_the_photo_colors(files):
    photo = Image.open(files / "photo.png").convert("YCbCr")
    out = run_transfer(files, preserve_color="luminance").convert("YCbCr")
    chroma = np.abs(_arr(out)[..., 1:] - _arr(photo)[..., 1:]).mean()
    assert chroma < 2.0
    assert run_transfer(files, preserve_color="histogram").size == (48, 40)


def test_alpha_channel_is_kept(files, tmp_path):
    Image.open(files / "photo.png").convert("RGBA").save(tmp_path / "rgba.png")
    out = painterly.transfer(tmp_path / "rgba.png", files / "s1.png", model=files / "dec.safetensors",
                             precision="fp32", device="cpu")
    assert out.mode == "RGBA"


def test_meta_method_and_saved_model(files, tmp_path, capsys):
    out = run_transfer(files, method="meta", model=files / "meta.safetensors")
    assert out.size == (48, 40)
    mixed = run_transfer(files, method="meta", model=files / "meta.safetensors",
                         style=[files / "s1.png", files / "s2.png"], style_weights=[1, 1])
    assert mixed.size == (48, 40)
    rc = main(["transfer", str(files / "photo.png"), "--style", str(files / "s1.png"), "--method", "meta",
               "--model", str(files / "meta.safetensors"), "--save-model", str(tmp_path / "gen.safetensors"),
               "--precision", "fp32", "-o", str(tmp_path / "o.png")])
    assert rc == 0 and (tmp_path / "o.png").is_file()
    model = load_model(tmp_path / "gen.safetensors")
    assert model.names == ["s1"]
    if "stylize" in COMMANDS:  # the feed-forward command (issue 3) uses it like any trained model
        rc = main(["stylize", str(files / "photo.png"), "--model", str(tmp_path / "gen.safetensors"),
                   "--style", "s1", "-o", str(tmp_path / "s.png")])
        assert rc == 0 and (tmp_path / "s.png").is_file()


def _cli_error(capsys, args) -> str:
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("painterly: error:"), err
    return err


def test_cli_errors_are_one_clear_line(files, tmp_path, capsys):
    photo, dec = str(files / "photo.png"), str(files / "dec.safetensors")
    base = ["transfer", photo, "--model", dec, "-o", str(tmp_path / "o.png")]
    (tmp_path / "bad.jpg").write_text("not an image")
    assert "bad.jpg" in _cli_error(capsys, [*base, "--style", str(tmp_path / "bad.jpg")])
    Image.new("L", (10, 40)).save(tmp_path / "narrow.png")
    err = _cli_error(capsys, [*base, "--style", str(files / "s1.png"), "--mask", str(tmp_path / "narrow.png")])
    assert "narrow.png" in err and "10x40" in err
    (tmp_path / "junk.png").write_bytes(b"\x89PNG garbage")
    assert "junk.png" in _cli_error(capsys, [*base, "--style", str(files / "s1.png"),
                                             "--mask", str(tmp_path / "junk.png")])
    assert "2 styles" in _cli_error(capsys, [*base, "--style", str(files / "s1.png"), "--style",
                                             str(files / "s2.png"), "--style-mix", "1"])
    assert "alpha" in _cli_error(capsys, [*base, "--style", str(files / "s1.png"), "--alpha", "2"])
    assert "not found" in _cli_error(capsys, ["transfer", photo, "--style", str(files / "s1.png"), "--model",
                                              str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "o.png")])
    assert "meta network" in _cli_error(capsys, [*base, "--style", str(files / "s1.png"), "--method", "meta"])
    assert "did you mean" in _cli_error(capsys, [*base, "--style", "starry"])


def test_missing_shipped_weights_give_a_model_error(tmp_path, monkeypatch):
    import painterly.models.tensorfile as tf

    monkeypatch.setattr(tf, "pretrained_path", lambda name: tmp_path / "pretrained" / name)
    import painterly.models.adain as adain_mod

    monkeypatch.setattr(adain_mod, "pretrained_path", lambda name: tmp_path / "pretrained" / name)
    with pytest.raises(painterly.ModelError, match="shipped weights are missing"):
        adain_mod.load_decoder()


@pytest.mark.parametrize("method", ["adain", "meta"])
def test_tiny_and_thin_photos_and_paintings(files, tmp_path, method):
    """A 1x1 painting and a 3-pixel-wide photo are processed upscaled; the result keeps the photo's size."""
    Image.new("RGB", (1, 1), (200, 30, 40)).save(tmp_path / "dot.png")
    Image.fromarray(np.full((50, 3, 3), 120, dtype=np.uint8)).save(tmp_path / "strip.png")
    model = files / ("dec.safetensors" if method == "adain" else "meta.safetensors")
    out = painterly.transfer(tmp_path / "strip.png", tmp_path / "dot.png", model=model, method=method,
                             precision="fp32", device="cpu")
    assert out.size == (3, 50)


@pytest.mark.parametrize("preserve_color", [None, "histogram", "luminance"])
def test_prepared_transfer_equals_transfer(files, preserve_color):
    kw = dict(alpha=0.8, preserve_color=preserve_color, model=files / "dec.safetensors", precision="fp32",
              device="cpu")
    styles = [files / "s1.png", files / "s2.png"]
    prepared = painterly.prepare_transfer(styles, style_weights=[2, 1], **kw)
    for size in (None, 32):
        once = painterly.transfer(files / "photo.png", styles, style_weights=[2, 1], size=size, **kw)
        assert np.array_equal(_arr(prepared(files / "photo.png", size=size)), _arr(once))
    with pytest.raises(PainterlyError, match="alpha"):
        painterly.prepare_transfer(styles, alpha=2.0)
