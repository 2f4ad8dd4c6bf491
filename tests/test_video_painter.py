"""The per-frame painters of `painterly video`: models loaded once, a painting's statistics taken once."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

from painterly.engines.choose import torch_available  # noqa: E402
from painterly.engines.onnx import OnnxAdaIN  # noqa: E402
from painterly.video import clips, video  # noqa: E402

ENGINES = ["onnxruntime"] + (["torch"] if torch_available() else [])


@pytest.mark.parametrize("engine", ENGINES)
def test_the_painting_is_encoded_once_per_video(tmp_path, monkeypatch, engine):
    """The VGG encoder runs once per frame (the frame) plus once for the painting, not twice per frame."""
    calls: list[tuple[int, ...]] = []

    def spy(cls):
        original = cls.encode

        def encode(self, x):
            calls.append(tuple(x.shape))
            return original(self, x)

        monkeypatch.setattr(cls, "encode", encode)

    spy(OnnxAdaIN)
    if engine == "torch":
        from painterly.models.adain import AdaIN

        spy(AdaIN)
    n = 6
    src = clips.write_clip(tmp_path / "in.mp4", clips.pan("lake.jpg", n, 64, 48), 12)
    result = video(src, tmp_path / "out.mp4", style_image="great-wave", style_size=64, engine=engine,
                   temporal=0.5, progress=False)
    assert result.frames == n
    painting = [s for s in calls if s[-2:] != (48, 64)]
    assert len(painting) == 1, calls  # the painting (64 px long side, not the frames' 64x48)
    assert len(calls) == n + 1


def test_the_style_painter_loads_the_model_stylize_picks(monkeypatch):
    from painterly.methods import stylize as st
    from painterly.video.painter import style_painter

    loads = []
    original = st.load_stylizer

    def load(*args, **kwargs):
        loaded = original(*args, **kwargs)
        loads.append((args, loaded))
        return loaded

    monkeypatch.setattr(st, "load_stylizer", load)
    paint = style_painter("starry-night", engine="onnxruntime")
    frames = [np.full((32, 48, 3), v, np.uint8) for v in (40, 120, 200)]
    assert all(paint(f).shape == f.shape for f in frames)
    (first_args, model), *later = loads
    assert first_args == (None, "onnxruntime")  # the default model of painterly.stylize's quality tier ...
    assert model.path == str(st._shipped("fast")[0]) and all(args[0] is model for args, _ in later)  # ... once
