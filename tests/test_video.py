"""painterly video: decoding/encoding, audio, resume, scene cuts, temporal consistency, bad input.

Clips are generated here (tiny: 64-128 px, a dozen frames); most tests use a cheap deterministic painter
instead of a network so they take well under a second each.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from painterly.cli import main  # noqa: E402
from painterly.errors import PainterlyError  # noqa: E402
from painterly.video import clips, metrics, video, work_folder  # noqa: E402
from painterly.video.io import FRAME_NAME  # noqa: E402

W, H = 96, 64


def pan_frames(n: int = 12, photo: str = "lake.jpg") -> list[np.ndarray]:
    """A camera pan over a bundled photo."""
    return clips.pan(photo, n, W, H, zoom=1.3)


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 12, audio_hz: float | None = None,
               rotation: int = 0) -> Path:
    return clips.write_clip(path, frames, fps, audio_hz, rotation, crf=12)


def write_folder(path: Path, frames: list[np.ndarray]) -> Path:
    path.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(path / f"f{i}.png")  # natural order: f2 before f10
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    if path.is_dir():
        return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(path.glob("*.png"))]
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def invert(frame: np.ndarray) -> np.ndarray:
    return 255 - frame


def flicker(frame: np.ndarray) -> np.ndarray:
    """A painter that flickers: a different noise pattern on every call, as an unsteady network would."""
    flicker.calls = getattr(flicker, "calls", 0) + 1
    noise = np.random.default_rng(flicker.calls).normal(0, 20, frame.shape)
    return np.clip(255.0 - frame + noise, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------


def test_round_trip_keeps_frames_rate_and_size(tmp_path):
    src = write_clip(tmp_path / "in.mp4", pan_frames(12), fps=12)
    result = video(src, tmp_path / "out.mp4", painter=invert, temporal=0, progress=False)
    with av.open(str(result.path)) as c:
        vs = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(vs)]
        assert vs.average_rate == 12 and vs.codec_context.name == "h264"
        assert (vs.codec_context.width, vs.codec_context.height) == (W, H)
        assert vs.codec_context.pix_fmt == "yuv420p"
    assert len(frames) == result.frames == 12
    original = read_frames(src)
    assert np.abs(frames[5].astype(int) - invert(original[5]).astype(int)).mean() < 6
    assert not work_folder(result.path).exists()


@pytest.mark.parametrize("suffix", [".webm", ".gif", ".mov"])
def test_other_containers_out_and_in(tmp_path, suffix):
    src = write_clip(tmp_path / "in.mp4", pan_frames(6), fps=12)
    out = video(src, tmp_path / f"out{suffix}", painter=invert, temporal=0.5, progress=False).path
    frames = read_frames(out)
    assert len(frames) == 6 and frames[0].shape == (H, W, 3)
    again = video(out, tmp_path / "again.mp4", painter=invert, temporal=0, progress=False)  # as an input
    assert again.frames == 6 and again.fps == 12
    back = read_frames(again.path)[3].astype(int)
    assert np.abs(back - read_frames(src)[3]).mean() < 12  # inverted twice


def test_size_fps_trim_and_rotation(tmp_path):
    src = write_clip(tmp_path / "in.mp4", pan_frames(12), fps=12, rotation=90)
    result = video(src, tmp_path / "out.mp4", painter=invert, size=48, fps=6, start=0.25, duration=0.5,
                   progress=False)
    assert result.frames == 3 and result.size == (32, 48)  # displayed: rotated, longest side 48, even
    with av.open(str(result.path)) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 90 and (frame.width, frame.height) == (48, 32)
    out = video(src, tmp_path / "frames", painter=invert, size=48, progress=False)
    first = read_frames(out.path)[0]
    assert first.shape == (48, 32, 3)  # rotation applied to the pixels of a frame folder


@pytest.mark.parametrize(("times", "rate", "start", "end", "expected"), [
    ([Fraction(i, 12) for i in range(6)], 12, 0, None, [0, 1, 2, 3, 4, 5]),
    ([Fraction(round(1000 * i / 12), 1000) for i in range(6)], 12, 0, None, [0, 1, 2, 3, 4, 5]),  # ms timestamps
    ([Fraction(i, 12) for i in range(12)], 6, 0, None, [0, 2, 4, 6, 8, 10]),
    ([Fraction(i, 30) for i in range(30)], 24, 0, None, [int(i * 30 / 24 + 0.5) for i in range(24)]),  # nearest
    ([Fraction(i, 12) for i in range(12)], 12, Fraction(1, 4), Fraction(3, 4), [3, 4, 5, 6, 7, 8]),
    ([Fraction(0), Fraction(1, 10), Fraction(1, 2)], 10, 0, None, [0, 1, 1, 1, 1, 2]),  # a held frame (VFR)
])
def test_resampling_onto_a_constant_rate(times, rate, start, end, expected):
    from painterly.video.io import _resample

    durations = [b - a for a, b in zip(times, times[1:], strict=False)] + [Fraction(1, rate)]
    timed = [(t, d, np.array(i)) for i, (t, d) in enumerate(zip(times, durations, strict=True))]
    got = [int(x) for x in _resample(iter(timed), Fraction(start), Fraction(1, rate), end)]
    assert got == expected


def test_frame_folders_in_and_out(tmp_path):
    frames = pan_frames(12)
    src = write_folder(tmp_path / "in", frames)
    result = video(src, tmp_path / "out", painter=invert, temporal=0, fps=10, progress=False)
    assert result.fps == 10 and sorted(p.name for p in result.path.iterdir())[0] == FRAME_NAME.format(1)
    out = read_frames(result.path)
    assert len(out) == 12
    assert np.array_equal(out[10], invert(frames[10]))  # natural sort order, lossless


def test_audio_passes_through(tmp_path):
    src = write_clip(tmp_path / "in.mp4", pan_frames(12), fps=12, audio_hz=440, rotation=0)
    for name in ("out.mp4", "out.webm"):  # copied (AAC in mp4), re-encoded (Opus in webm)
        result = video(src, tmp_path / name, painter=invert, temporal=0, progress=False)
        assert result.audio
        with av.open(str(result.path)) as c:
            a = c.streams.audio[0]
            assert a.codec_context.name == ("aac" if name.endswith("mp4") else "opus")
            samples = np.concatenate([_first_channel(f) for f in c.decode(a)])
            rate = a.codec_context.sample_rate
        assert abs(len(samples) / rate - 1.0) < 0.15
        spectrum = np.abs(np.fft.rfft(samples[rate // 10: rate // 10 + 4096]))
        assert abs(np.argmax(spectrum) * rate / 4096 - 440) < 15


def _first_channel(frame) -> np.ndarray:
    x = frame.to_ndarray()
    return x[0] if frame.format.is_planar else x[0, :: len(frame.layout.channels)]


@pytest.mark.parametrize("interpolate", [False, True])
def test_resume_after_a_kill_gives_the_same_video(tmp_path, interpolate):
    src = write_clip(tmp_path / "in.mp4", pan_frames(12), fps=12)
    opts = dict(painter=invert, temporal=0.8, segment_seconds=0.25, progress=False,  # 4 segments of 3 frames
                interpolate=interpolate)
    whole = video(src, tmp_path / "whole.mp4", **opts)

    def kill(k: int) -> None:
        if k == 1:
            raise KeyboardInterrupt

    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        video(src, out, on_segment=kill, **opts)
    assert not out.exists() and len(list(work_folder(out).glob("segment_*.mp4"))) == 2
    with pytest.raises(PainterlyError, match="other input or options"):
        video(src, out, resume=True, **{**opts, "temporal": 0.5})
    resumed = video(src, out, resume=True, **opts)
    assert resumed.resumed == 2 and resumed.frames == 12
    a, b = read_frames(whole.path), read_frames(out)
    assert len(a) == len(b) == 12
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_scene_cut_resets_the_temporal_state(tmp_path):
    scene_a, scene_b = pan_frames(6, "lake.jpg"), pan_frames(6, "otters.jpg")
    src = write_folder(tmp_path / "in", scene_a + scene_b)
    result = video(src, tmp_path / "out", painter=invert, temporal=1.0, progress=False)
    out = read_frames(result.path)
    assert result.cuts == 1
    assert np.array_equal(out[6], invert(scene_b[0]))  # the first frame after the cut: the painter's alone
    for i in range(7, 12):  # and nothing of the lake in the following ones
        own = np.abs(out[i].astype(int) - invert(scene_b[i - 6])).mean()
        assert own < 0.2 * np.abs(out[i].astype(int) - invert(scene_a[5])).mean()
    assert not np.array_equal(out[3], invert(scene_a[3]))  # (the blending was on before the cut)


def test_temporal_blending_reduces_the_warping_error(tmp_path):
    frames = pan_frames(10)
    src = write_folder(tmp_path / "in", frames)
    errors = {}
    for t in (0.0, 0.8):
        result = video(src, tmp_path / f"out{int(t * 10)}", painter=flicker, temporal=t, progress=False)
        errors[t] = metrics.warping_error(frames, read_frames(result.path))["warping_error"]
    assert errors[0.8] < 0.6 * errors[0.0], errors


class Counting:
    """The inverting painter, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return invert(frame)


def test_interpolation_paints_every_other_frame_and_stays_close(tmp_path):
    frames = pan_frames(12)
    src = write_folder(tmp_path / "in", frames)
    paint = Counting()
    result = video(src, tmp_path / "out", painter=paint, temporal=0.0, interpolate=True, progress=False)
    out = read_frames(result.path)
    assert result.frames == len(out) == 12 and result.interpolated >= 4
    assert paint.calls == 12 - result.interpolated <= 8
    errors = [np.abs(o.astype(int) - invert(f)).mean() for o, f in zip(out, frames, strict=True)]
    exact = [i for i, e in enumerate(errors) if e == 0]
    assert len(exact) == paint.calls  # painted frames are the painter's own (temporal 0) ...
    assert max(errors) < 6, errors  # ... and the interpolated ones close to what it would have painted
    off = video(src, tmp_path / "off", painter=Counting(), temporal=0.0, progress=False)
    assert off.interpolated == 0


def test_interpolation_paints_the_frames_after_a_cut_and_fast_motion(tmp_path):
    scene_a, scene_b = pan_frames(12, "lake.jpg"), pan_frames(6, "otters.jpg")
    src = write_folder(tmp_path / "in", scene_a + scene_b)
    result = video(src, tmp_path / "out", painter=invert, temporal=0.0, interpolate=True, progress=False)
    out = read_frames(result.path)
    assert result.cuts == 1 and result.interpolated >= 3
    # the frames on both sides of the cut are painted: nothing is interpolated across it
    assert np.array_equal(out[11], invert(scene_a[11])) and np.array_equal(out[12], invert(scene_b[0]))
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(6)]  # no flow covers anything
    res = video(write_folder(tmp_path / "noise", noise), tmp_path / "n", painter=invert, interpolate=True,
                temporal=0.0, progress=False)
    assert res.interpolated == 0 and all(np.array_equal(o, invert(f)) for o, f in zip(read_frames(res.path), noise,
                                                                                       strict=True))


def test_cli_with_the_shipped_model(tmp_path, capsys):
    src = write_clip(tmp_path / "in.mp4", pan_frames(4), fps=12, audio_hz=330)
    out = tmp_path / "out.mp4"
    assert main(["video", str(src), "--style", "starry-night", "--size", "64", "-o", str(out), "--quiet"]) == 0
    assert "4 frames, 64x42" in capsys.readouterr().out and len(read_frames(out)) == 4
    assert main(["video", str(src), "--style", "starry-night", "--size", "64", "-o", str(out), "--quiet",
                 "--interpolate"]) == 0
    assert re.search(r"4 frames, .* \d interpolated", capsys.readouterr().out) and len(read_frames(out)) == 4
    assert main(["video", str(src), "--style-image", "great-wave", "--style-size", "64", "--size", "48",
                 "--duration", "0.2", "-o", str(tmp_path / "adain.gif"), "--quiet"]) == 0
    assert len(read_frames(tmp_path / "adain.gif")) == 3


@pytest.mark.parametrize("case", ["not-video", "truncated", "image", "unwritable", "empty", "past-end", "missing"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    good = write_clip(tmp_path / "good.mp4", pan_frames(6), fps=12)
    src, out, extra = good, tmp_path / "out.mp4", []
    if case == "not-video":
        src = tmp_path / "notes.mp4"
        src.write_text("hello, not a video\n")
    elif case == "truncated":
        src = tmp_path / "cut.mp4"
        src.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif case == "image":
        src = tmp_path / "photo.png"
        Image.fromarray(pan_frames(1)[0]).save(src)
    elif case == "unwritable":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out.mp4"
    elif case == "empty":
        src = tmp_path / "empty.mp4"
        with av.open(str(src), "w") as c:
            s = c.add_stream("libx264", rate=Fraction(12))
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    elif case == "past-end":
        extra = ["--start", "5"]
    elif case == "missing":
        src = tmp_path / "nope.mp4"
    code = main(["video", str(src), "--style", "starry-night", "-o", str(out), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("painterly: error:") and "\n" not in err, err
    assert not out.exists()
