"""The threaded video pipeline: background stages (prefetch, Sink) and the pipelined run against the
sequential one: the same frames, errors from the decode and encode threads raised once in the caller, no
deadlock when a stage fails or the caller stops early."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("cv2")

from painterly.errors import PainterlyError  # noqa: E402
from painterly.video import clips, pipeline, video  # noqa: E402
from painterly.video.stages import Sink, prefetch  # noqa: E402


def finishes(fn, timeout: float = 20.0):
    """Run ``fn`` in a thread; fail (instead of hanging) when it does not return within ``timeout``."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "deadlock: did not finish"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --------------------------------------------------------------------------------------------
# stages


def test_prefetch_yields_everything_in_order_and_raises_the_producer_error():
    assert finishes(lambda: list(prefetch(iter(range(50)), depth=2))) == list(range(50))

    def broken():
        yield 1
        yield 2
        raise ValueError("decoder broke")

    got = []
    with pytest.raises(ValueError, match="decoder broke"):
        finishes(lambda: got.extend(prefetch(broken(), depth=1)))
    assert got == [1, 2]


def test_prefetch_stops_a_producer_blocked_on_a_full_queue():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    def take_three():
        out = []
        for x in prefetch(endless(), depth=1):
            out.append(x)
            if len(out) == 3:
                break
        return out

    assert finishes(take_three) == [0, 1, 2]
    assert closed.wait(5), "the producer's generator was not closed"


def test_sink_consumes_in_order_and_raises_its_error_once():
    seen = []
    sink = Sink(seen.append, depth=2)
    for i in range(20):
        sink.put(i)
    finishes(sink.close)
    assert seen == list(range(20))

    def consume(x):
        if x == 3:
            raise OSError("disk full")

    def feed():
        with Sink(consume, depth=1) as s:
            for i in range(200):  # far more than the queue holds: put() must not block after the error
                s.put(i)
            s.close()

    with pytest.raises(OSError, match="disk full"):
        finishes(feed)


def test_sink_left_on_an_error_drops_the_rest_and_joins():
    seen = []

    def slow(x):
        time.sleep(0.01)
        seen.append(x)

    def fail_midway():
        with Sink(slow, depth=2) as s:
            for i in range(10):
                s.put(i)
                if i == 4:
                    raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finishes(fail_midway)
    assert seen == list(range(len(seen))) and len(seen) <= 5


# --------------------------------------------------------------------------------------------
# the pipeline


def invert(frame: np.ndarray) -> np.ndarray:
    return 255 - frame


def slow_invert(frame: np.ndarray) -> np.ndarray:
    time.sleep(0.005)  # lets the decode and encode threads run ahead
    return 255 - frame


def read_folder(path: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(path.glob("*.png"))]


@pytest.fixture()
def clip(tmp_path) -> Path:
    frames = clips.pan("lake.jpg", 8, 96, 64, zoom=1.3) + clips.pan("otters.jpg", 6, 96, 64, zoom=1.3)  # a cut
    return clips.write_clip(tmp_path / "in.mp4", frames, 12, crf=12)


@pytest.mark.parametrize("interpolate", [False, True])
def test_threaded_output_equals_the_sequential_output(tmp_path, clip, interpolate):
    opts = dict(painter=slow_invert, temporal=0.8, segment_seconds=0.5, progress=False, interpolate=interpolate)
    seq = video(clip, tmp_path / "seq", threaded=False, **opts)
    par = video(clip, tmp_path / "par", threaded=True, **opts)
    a, b = read_folder(seq.path), read_folder(par.path)
    assert len(a) == len(b) == 14 and seq.cuts == par.cuts == 1
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    mp4 = [video(clip, tmp_path / f"{t}.mp4", threaded=t, **opts).path for t in (False, True)]
    assert mp4[0].read_bytes() == mp4[1].read_bytes()


def test_an_error_in_the_encode_thread_is_one_clear_error(tmp_path, clip, monkeypatch):
    calls = []

    def full_disk(self, frame):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline.SegmentWriter, "write", full_disk)
    out = tmp_path / "out.mp4"
    with pytest.raises(PainterlyError, match="No space left on device"):
        finishes(lambda: video(clip, out, painter=invert, temporal=0.5, progress=False))
    assert len(calls) == 3 and not out.exists()


def test_an_error_in_the_decode_thread_is_raised_as_it_is(tmp_path, clip, monkeypatch):
    def broken(*args, **kwargs):
        yield np.zeros((64, 96, 3), np.uint8)
        raise PainterlyError("cannot read video: damaged or truncated (test)")

    monkeypatch.setattr(pipeline.FrameSource, "frames", broken)
    with pytest.raises(PainterlyError, match="truncated"):
        finishes(lambda: video(clip, tmp_path / "out.mp4", painter=invert, progress=False))


def test_an_error_in_the_model_stops_the_other_threads(tmp_path, clip):
    def failing(frame):
        failing.calls = getattr(failing, "calls", 0) + 1
        if failing.calls == 2:
            raise RuntimeError("model broke")
        return 255 - frame

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="model broke"):
        finishes(lambda: video(clip, tmp_path / "out.mp4", painter=failing, progress=False))
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before


def test_the_model_gets_every_core(monkeypatch):
    monkeypatch.delenv("PAINTERLY_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(pipeline, "physical_cores", lambda: 8)
    assert pipeline._thread_split(True) == (8, 1)
    assert pipeline._thread_split(False) == (None, None)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert pipeline._thread_split(True) == (3, 1)
    monkeypatch.setattr(pipeline, "physical_cores", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert pipeline._thread_split(True) == (1, 1)
