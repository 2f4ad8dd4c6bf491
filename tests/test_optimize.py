"""Optimization-based transfer (Gatys): convergence, options, colour preservation, CLI contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.cli import main
from painterly.methods.optimize import OptimizeConfig, normalize_weights, optimize, scale_sizes

FAST = dict(size=64, steps=6, scales=1, progress=False)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    arr = np.stack([x * 4, y * 5, 128 + 60 * np.sin(x / 5.0)], -1) + rng.normal(0, 8, (48, 64, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def painting() -> Image.Image:
    rng = np.random.default_rng(1)
    stripes = (np.indices((64, 64)).sum(0) // 6 % 2)[..., None] * np.array([200, 40, 30])
    return Image.fromarray(np.clip(stripes + rng.normal(30, 20, (64, 64, 3)), 0, 255).astype(np.uint8))


def test_loss_decreases(photo, painting):
    history = []
    optimize(photo, painting, **{**FAST, "steps": 10}, callback=lambda s, x, losses: history.append(losses["total"]))
    assert len(history) == 10
    assert history[-1] < 0.7 * history[0]


@pytest.mark.parametrize("opt", ["lbfgs", "adam"])
def test_optimizers_and_output_size(photo, painting, opt):
    history = []
    out = optimize(photo, painting, **FAST, optimizer=opt,
                   callback=lambda s, x, losses: history.append(losses["total"]))
    assert out.size == (64, 48) and out.mode == "RGB"
    assert min(history[1:]) < history[0]


def test_multiscale_runs_every_level(photo, painting):
    shapes = []
    optimize(photo, painting, size=128, steps=2, scales=2, progress=False,
             callback=lambda s, x, losses: shapes.append(tuple(x.shape[-2:])))
    assert shapes == [(48, 64)] * 2 + [(96, 128)] * 2
    assert scale_sizes(512, 3) == [128, 256, 512]


def test_seed_reproducible_noise_init(photo, painting):
    a = optimize(photo, painting, **FAST, init="noise", seed=3, precision="fp32")
    b = optimize(photo, painting, **FAST, init="noise", seed=3, precision="fp32")
    c = optimize(photo, painting, **FAST, init="noise", seed=4, precision="fp32")
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_style_mix_changes_result_and_weights_normalise(photo, painting):
    other = Image.new("RGB", (64, 64), (20, 160, 60))
    a = np.asarray(optimize(photo, [painting, other], style_weights=[1, 0], **FAST), dtype=float)
    b = np.asarray(optimize(photo, [painting, other], style_weights=[0, 1], **FAST), dtype=float)
    assert np.abs(a - b).mean() > 2
    assert normalize_weights([2, 6], 2) == [0.25, 0.75]
    with pytest.raises(ValueError):
        normalize_weights([1], 2)
    with pytest.raises(ValueError):
        normalize_weights([0, 0], 2)


def _chroma(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("YCbCr"), dtype=float)[..., 1:]


def test_luminance_preservation_keeps_content_chroma(photo, painting):
    opts = {**FAST, "steps": 15}
    out = optimize(photo, painting, **opts, preserve_color="luminance")
    plain = optimize(photo, painting, **opts)
    ref = _chroma(photo)
    assert np.abs(_chroma(out) - ref).mean() < 2.0  # only YCbCr rounding and gamut clipping remain
    assert np.abs(_chroma(plain) - ref).mean() > 5 * np.abs(_chroma(out) - ref).mean()


def test_histogram_preservation_moves_colours_towards_content(photo, painting):
    out = np.asarray(optimize(photo, painting, **FAST, preserve_color="histogram"), dtype=float)
    plain = np.asarray(optimize(photo, painting, **FAST), dtype=float)
    target = np.asarray(photo, dtype=float).reshape(-1, 3).mean(0)
    assert np.abs(out.reshape(-1, 3).mean(0) - target).sum() < np.abs(plain.reshape(-1, 3).mean(0) - target).sum()


def test_alpha_is_reattached(painting):
    rgba = Image.new("RGBA", (40, 30), (120, 80, 40, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    out = optimize(rgba, painting, size=40, steps=2, progress=False)
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0 and out.getpixel((20, 15))[3] == 255


def test_intermediate_images(tmp_path, photo, painting):
    optimize(photo, painting, **FAST, save_every=3, save_dir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00003.png", "step_00006.png"]


def test_bad_options_raise():
    with pytest.raises(TypeError):
        optimize("x.jpg", "y.jpg", no_such_option=1)
    with pytest.raises(ValueError):
        OptimizeConfig(optimizer="sgd").validate()


def test_bf16_close_to_fp32(photo, painting):
    """bf16 autocast must not change what the optimization converges to in a visible way."""
    a = np.asarray(optimize(photo, painting, **FAST, precision="fp32"), dtype=float)
    b = np.asarray(optimize(photo, painting, **FAST, precision="bf16"), dtype=float)
    assert np.abs(a - b).mean() < 12


# ---- CLI contract ---------------------------------------------------------------------------


def test_cli_contract(tmp_path, photo, painting):
    c, s1, s2 = tmp_path / "c.png", tmp_path / "s1.png", tmp_path / "s2.jpg"
    photo.save(c)
    painting.save(s1)
    painting.rotate(90).save(s2)
    out = tmp_path / "out.jpg"
    rc = main(["optimize", str(c), "--style", str(s1), "--style", str(s2), "--style-mix", "0.7", "0.3",
               "-o", str(out), "--size", "48", "--steps", "2", "--optimizer", "adam", "--init", "noise",
               "--scales", "2", "--preserve-color", "histogram", "--content-weight", "2", "--style-weight", "10",
               "--tv-weight", "0.1", "--seed", "1", "--quiet"])
    assert rc == 0
    assert Image.open(out).size == (48, 36)


def test_cli_bundled_painting_by_name(tmp_path, photo):
    c = tmp_path / "c.png"
    photo.save(c)
    out = tmp_path / "o.png"
    assert main(["optimize", str(c), "--style", "starry-night", "-o", str(out), "--size", "32", "--steps", "1",
                 "--quiet"]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--style", "starry"], "unknown painting 'starry'"),
        (["--style", "missing.png"], "no such file"),
        (["--style", "starry-night", "--style-mix", "1", "2"], "--style-mix has 2 weights for 1 styles"),
        (["--style", "starry-night", "--steps", "0"], "steps and scales must be at least 1"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, photo, capsys, args, message):
    c = tmp_path / "c.png"
    photo.save(c)
    rc = main(["optimize", str(c), "-o", str(tmp_path / "o.png"), "--size", "32", "--quiet", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_cli_bad_content_and_output(tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    assert main(["optimize", str(bad), "--style", "starry-night", "-o", str(tmp_path / "o.png")]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert main(["optimize", str(bad), "--style", "starry-night", "-o", str(tmp_path / "o.gif")]) == 2
    assert "unsupported extension" in capsys.readouterr().err



def test_public_api_exports_optimize(photo, painting):
    import painterly

    out = painterly.optimize(photo, painting, size=32, steps=2, progress=False)
    assert out.size == (32, 24)
    scores = painterly.score_stylization(out, photo, painting, size=32)
    assert set(scores) == {"content", "style", "tv", "total"} and scores["total"] > 0


def test_thin_photo_and_tiny_painting(painting):
    """A photo 3 px wide and a 1x1 painting are optimized upscaled; the result has the photo's (resized) size."""
    strip = Image.fromarray(np.full((60, 3, 3), 100, dtype=np.uint8))
    assert optimize(strip, painting, **{**FAST, "steps": 2, "scales": 2}).size == (3, 64)
    assert optimize(painting, Image.new("RGB", (1, 1), (9, 200, 9)), **{**FAST, "steps": 2}).size == (64, 64)


def test_lattice_score_finds_a_periodic_lattice():
    import painterly

    gen = np.random.default_rng(0)
    noise = gen.normal(0, 1, (130, 150)).astype(np.float32)
    smooth = np.cumsum(np.cumsum(noise, 0), 1)  # a smooth random field, no preferred period
    smooth = (smooth - smooth.min()) / np.ptp(smooth) * 200 + 20
    lattice = smooth.copy()
    lattice[::4, :] += 25  # 4x4 blocks, as a small network's nearest upsampling leaves them
    lattice[:, ::4] += 25
    as_img = lambda a: Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("RGB")  # noqa: E731
    clean, blocky = painterly.lattice_score(as_img(smooth)), painterly.lattice_score(as_img(lattice))
    assert clean < 2.0 and blocky > 3.0
    assert painterly.lattice_score(as_img(lattice), period=3) < blocky / 4  # another period: not this lattice
    with pytest.raises(ValueError, match="too small"):
        painterly.lattice_score(Image.new("RGB", (10, 10)))


def test_optimize_does_not_reseed_the_global_rng(photo, painting):
    torch.manual_seed(123)
    a = optimize(photo, painting, **{**FAST, "steps": 1}, init="noise", seed=7)
    assert torch.initial_seed() == 123  # its own generator drew the noise
    b = optimize(photo, painting, **{**FAST, "steps": 1}, init="noise", seed=7)
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_optimize_defaults_are_the_fast_path():
    cfg = OptimizeConfig()
    assert (cfg.scales, cfg.steps, cfg.size) == (2, 100, 512)
