"""Stroke scale: the working resolution, guided upsampling, and --stroke-scale on stylize/transfer/video.

Most tests use a spy stylizer (numpy, no torch) that records the size the network is given; the CLI tests
run the shipped ONNX models on images of a few dozen pixels with a large stroke scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import painterly
from painterly.cli import main
from painterly.errors import PainterlyError
from painterly.imageio import from_array, to_array
from painterly.stroke_scale import MAX_STROKE_SCALE, check_stroke_scale, working_side, working_size
from painterly.styles import StyleInfo
from painterly.upsample import guided_upsample
from painterly.video.painter import style_painter


class Spy:
    """A stand-in network: records each input's (H, W), paints a fixed colour mapping."""

    engine = "spy"
    path = None

    def __init__(self) -> None:
        self.styles = [StyleInfo("ink")]
        self.seen: list[tuple[int, int]] = []

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.styles]

    def style_weights(self, style) -> np.ndarray:
        return np.ones(1, np.float32)

    def run(self, x: np.ndarray, weights: np.ndarray, tile_size: int = 1024) -> np.ndarray:
        self.seen.append(tuple(x.shape[-2:]))
        return paint_colours(x)


def paint_colours(x: np.ndarray) -> np.ndarray:
    """A linear colour mapping of a (1, 3, H, W) image in [0, 1], as a stylization would be locally."""
    m = np.array([[0.5, 0.2, 0.1], [0.1, -0.4, 0.2], [0.3, 0.3, -0.2]], np.float32)
    return np.clip(np.einsum("ij,bjhw->bihw", m, x) + 0.3, 0.0, 1.0)


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def step_edge(size: int = 192) -> np.ndarray:
    """A two-colour image split by an oblique edge (not aligned with any pixel grid), uint8 (size, size, 3)."""
    yy, xx = np.mgrid[0:size, 0:size]
    edge = (xx * 0.8 + yy * 0.37 > 0.55 * size).astype(np.float64)[..., None]
    a, b = np.array([0.2, 0.7, 0.4]), np.array([0.8, 0.2, 0.5])
    return np.rint((a + (b - a) * edge) * 255).astype(np.uint8)


# -- the working resolution ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, None), ("0", None), ("off", None),
                                                 ("None", None), (1, 1.0), ("2", 2.0), (0.5, 0.5), ("1.5", 1.5)])
def test_check_stroke_scale_accepts_numbers_and_off(value, expected):
    assert check_stroke_scale(value) == expected


@pytest.mark.parametrize("value", [-1, "-0.5", "abc", "nan", "inf", "", MAX_STROKE_SCALE * 2])
def test_check_stroke_scale_rejects_bad_values(value):
    with pytest.raises(PainterlyError, match="bad stroke scale"):
        check_stroke_scale(value)


def test_working_size():
    assert working_side(1) == 1024 and working_side(2) == 512 and working_side(0.5) == 2048
    assert working_side(None) is None
    assert working_size((4096, 4096), 1) == (1024, 1024)
    assert working_size((4096, 3072), 2) == (512, 384)
    assert working_size((3000, 6000), 1) == (512, 1024)
    assert working_size((4096, 4096), 0.25) is None  # no larger than the working size: as it is
    assert working_size((1024, 800), 1) is None and working_size((800, 600), 1) is None
    assert working_size((4096, 4096), None) is None


# -- what the network sees -------------------------------------------------------------------


def test_stroke_scale_sets_the_size_the_network_sees():
    spy, photo = Spy(), noise(96, 64)
    for x, side in ((16, 64), (32, 32)):  # 1024 / 16 = 64 px, twice the stroke scale: half the side
        out = painterly.stylize(photo, model=spy, stroke_scale=x)
        assert out.size == photo.size and out.mode == "RGB"
        assert max(spy.seen[-1]) == side
    assert spy.seen[-1] == (21, 32)


def test_stroke_scale_off_is_the_old_behaviour_exactly():
    spy, photo = Spy(), noise(96, 64)
    old = from_array(paint_colours(to_array(photo)))
    for off in (None, 0, "off"):
        out = painterly.stylize(photo, model=spy, stroke_scale=off)
        assert spy.seen[-1] == (64, 96)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(old))
    # an image no larger than the working size (1024 px at the default scale) is painted as before
    np.testing.assert_array_equal(np.asarray(painterly.stylize(photo, model=spy)), np.asarray(old))
    assert spy.seen[-1] == (64, 96)


def test_options_keep_working_with_stroke_scale():
    spy = Spy()
    rgba = noise(80, 48).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(80, dtype=np.uint8) * 3, (48, 1))))
    out = painterly.stylize(rgba, model=spy, stroke_scale=32, strength=0.5, preserve_color="luminance")
    assert out.size == rgba.size and out.mode == "RGBA" and spy.seen[-1] == (19, 32)
    np.testing.assert_array_equal(np.asarray(out)[..., 3], np.asarray(rgba)[..., 3])
    assert painterly.stylize(rgba, model=spy, size=64, stroke_scale=32).size == (64, 38)


def test_transfer_with_a_mask_at_the_working_size():
    photo = noise(64, 48)
    mask = Image.fromarray(np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None], 48, axis=0))
    out = painterly.transfer(photo, ["udnie", "great-wave"], mask=mask, style_size=32, engine="onnxruntime",
                             stroke_scale=32)
    assert out.size == photo.size


def test_video_painter_passes_the_stroke_scale():
    spy = Spy()
    paint = style_painter("ink", model=spy, stroke_scale=32)
    frame = np.asarray(noise(96, 64))
    assert paint(frame).shape == frame.shape and max(spy.seen[-1]) == 32


# -- guided upsampling -----------------------------------------------------------------------


def test_guided_upsampling_restores_a_sharp_edge():
    guide = step_edge(192)
    small = Image.fromarray(guide).resize((48, 48), Image.Resampling.LANCZOS)
    low = from_array(paint_colours(to_array(small)))
    target = paint_colours(to_array(Image.fromarray(guide)))[0].transpose(1, 2, 0)
    guided = np.asarray(guided_upsample(low, guide, small), np.float64) / 255
    plain = np.asarray(low.resize((192, 192), Image.Resampling.BILINEAR), np.float64) / 255
    assert guided.shape == target.shape
    yy, xx = np.mgrid[0:192, 0:192]
    band = np.abs(xx * 0.8 + yy * 0.37 - 0.55 * 192) < 6  # the pixels next to the edge
    err_guided, err_plain = np.abs(guided - target)[band].mean(), np.abs(plain - target)[band].mean()
    assert err_guided < 0.25 * err_plain, (err_guided, err_plain)

    def steepest(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a, axis=1)).sum(-1).max())

    assert steepest(guided) > 0.8 * steepest(target) > 2 * steepest(plain)
    # away from the edge nothing changes: the stylization's own colours
    assert np.abs(guided - target)[~band].mean() < 2 / 255


def test_guided_upsampling_in_strips_equals_whole():
    guide = np.asarray(noise(120, 90, seed=3))
    low = noise(40, 30, seed=4)
    whole = np.asarray(guided_upsample(low, guide), np.int16)
    strips = np.asarray(guided_upsample(low, guide, strip_pixels=7 * 120), np.int16)
    assert whole.shape == (90, 120, 3)
    assert np.abs(whole - strips).max() <= 1


def test_guided_upsampling_downscales_back_to_the_stylization():
    """The look is kept: the full-size result, downscaled again, is the low-resolution stylization, its own
    texture included (closer than a plain bicubic upsampling, whose round trip blurs it)."""
    guide = noise(256, 192, seed=5)
    small = guide.resize((64, 48), Image.Resampling.LANCZOS)
    texture = np.random.default_rng(6).normal(0.0, 0.08, (1, 3, 48, 64))  # strokes the photo does not explain
    low = from_array(paint_colours(to_array(small)) * 0.5 + 0.25 + texture)
    target = np.asarray(low, np.float64)

    def round_trip(big: Image.Image) -> float:
        return float(np.abs(np.asarray(big.resize(low.size, Image.Resampling.LANCZOS), np.float64) - target).mean())

    guided = round_trip(guided_upsample(low, guide, small))
    plain = round_trip(low.resize(guide.size, Image.Resampling.BICUBIC))
    assert guided < 0.6 * plain and guided < 4, (guided, plain)


# -- command line ----------------------------------------------------------------------------


def test_cli_accepts_stroke_scale(tmp_path, capsys):
    photo = tmp_path / "p.png"
    noise(48, 40).save(photo)
    out = tmp_path / "o.png"
    assert main(["stylize", str(photo), "--style", "udnie", "--engine", "onnxruntime", "--stroke-scale", "32",
                 "-o", str(out)]) == 0
    assert Image.open(out).size == (48, 40)
    assert main(["stylize", str(photo), "--style", "udnie", "--engine", "onnxruntime", "--stroke-scale", "off",
                 "-o", str(out)]) == 0
    assert main(["transfer", str(photo), "--style", "udnie", "--style-size", "32", "--engine", "onnxruntime",
                 "--stroke-scale", "32", "-o", str(out)]) == 0
    assert Image.open(out).size == (48, 40)
    capsys.readouterr()


def test_cli_video_accepts_stroke_scale(tmp_path, capsys):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        noise(48, 32, seed=i).save(frames / f"f{i}.png")
    out = tmp_path / "out"
    assert main(["video", str(frames), "--style", "udnie", "--engine", "onnxruntime", "--stroke-scale", "32",
                 "--temporal", "0", "-o", str(out), "--quiet"]) == 0
    assert "2 frames, 48x32" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["stylize", "transfer", "video"])
@pytest.mark.parametrize("value", ["-1", "abc", "nan", "1e9"])
def test_cli_rejects_bad_stroke_scale(tmp_path, capsys, command, value):
    photo = tmp_path / "p.png"
    noise(32, 32).save(photo)
    out = tmp_path / ("o.png" if command != "video" else "o.gif")
    rc = main([command, str(photo), "--style", "udnie", "--stroke-scale", value, "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("painterly: error: bad stroke scale") and "\n" not in err, err
    assert not out.exists()
