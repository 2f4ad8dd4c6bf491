"""``painterly.video``: stylize a video (or a folder of frames) frame by frame, with temporal consistency,
in resumable segments, keeping the audio.

The output timeline has a constant rate (the input's, or ``fps``) and is cut into segments of
``segment_seconds``. Each segment is decoded from its start time, stylized, blended with the previous
output along the optical flow, and encoded to its own file in a work folder next to the output
(``OUT.parts/``) together with the temporal state at its end (the last input and output frames). A killed
run continues with ``resume=True`` from the first unfinished segment, with the state it would have had, so
the result is the same as an uninterrupted run's. At the end the segments are joined by remuxing (no
re-encoding), the audio is copied through, the output replaces any old file at once and the work folder
is removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..cpuinfo import physical_cores
from ..engines.threads import configured, limited
from ..errors import PainterlyError
from ..imageio import atomic_write_bytes
from ..malloc import keep_freed_memory
from ..stroke_scale import DEFAULT_STROKE_SCALE, StrokeScale, check_stroke_scale
from .flow import opencv_threads
from .io import FRAME_NAME, FrameSource, SegmentWriter, atomic_path, join_segments, output_kind, rotate
from .painter import Painter, painting_painter, style_painter
from .stages import Sink, prefetch
from .temporal import Motion, TemporalBlender, TemporalState, interpolable

#: Default length of a resumable segment, in seconds of output.
DEFAULT_SEGMENT_SECONDS = 10.0
#: Default strength of the temporal blending.
DEFAULT_TEMPORAL = 0.6
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class VideoResult:
    """What :func:`video` wrote."""

    path: Path
    frames: int
    fps: Fraction
    size: tuple[int, int]  # displayed (width, height)
    audio: bool
    cuts: int  # scene cuts detected (in the segments processed by this call)
    resumed: int  # segments found finished and skipped
    interpolated: int = 0  # frames interpolated instead of painted (in the segments processed by this call)


def _even(x: float) -> int:
    return max(2, 2 * round(x / 2))


def work_folder(output: str | os.PathLike) -> Path:
    """Where the segments of ``output`` are kept until it is finished."""
    out = Path(output)
    return out.parent / f"{out.name}.parts"


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _save_state(path: Path, state: TemporalState) -> None:
    import io

    buf = io.BytesIO()
    if state.prev_input is None:
        np.savez(buf)
    else:
        np.savez_compressed(buf, prev_input=state.prev_input, prev_output=state.prev_output)
    atomic_write_bytes(path, buf.getvalue())


def _load_state(path: Path) -> TemporalState:
    with np.load(path) as z:
        if "prev_input" not in z:
            return TemporalState()
        return TemporalState(z["prev_input"], z["prev_output"])


def _make_painter(style, style_image, style_size, strength, preserve_color, model, engine, stroke_scale) -> Painter:
    if (style is None) == (style_image is None):
        raise PainterlyError("give either a style (--style) or a painting (--style-image)")
    if style_image is not None:
        return painting_painter(style_image, strength, preserve_color, model, engine, style_size, stroke_scale)
    return style_painter(style, strength, preserve_color, model, engine, stroke_scale)


def video(
    input: str | os.PathLike,
    output: str | os.PathLike,
    style: str | Mapping[str, float] | Sequence[str] | None = None,
    *,
    style_image: Any = None,
    style_size: int = 512,
    size: int | None = None,
    stroke_scale: StrokeScale = DEFAULT_STROKE_SCALE,
    strength: float = 1.0,
    preserve_color: str | None = None,
    temporal: float = DEFAULT_TEMPORAL,
    interpolate: bool = False,
    model: Any = None,
    engine: str | None = None,
    fps: float | None = None,
    start: float = 0.0,
    duration: float | None = None,
    resume: bool = False,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    progress: bool = True,
    painter: Painter | None = None,
    on_segment: Callable[[int], None] | None = None,
    threaded: bool = True,
) -> VideoResult:
    """Stylize the video (or folder of frames) ``input`` into ``output`` (.mp4, .mov, .webm, .gif, or a folder
    for PNG frames).

    Args:
        style: a trained style name, ``{name: weight}`` or a list of names (as :func:`painterly.stylize`).
        style_image: instead of ``style``: any painting (file, image or bundled name), by AdaIN
            (:func:`painterly.transfer`); ``style_size``: its longest side is downscaled to this.
        size: longest side of the output in pixels (default: the input's), rounded to even numbers.
        stroke_scale: stroke size relative to the frame, as for :func:`painterly.stylize` (frames larger than
            ``1024 / stroke_scale`` px are painted at that size and guided-upsampled; None or 0: off).
        strength: 0..1, how much of the style (for a painting: AdaIN's alpha).
        preserve_color: ``None``, ``"luminance"`` or ``"histogram"``.
        temporal: 0..1, how strongly each frame follows the previous output along the optical flow (0: off).
        interpolate: paint at most every other frame: a frame whose pixels the previous output and the next
            frame's stylization both cover (along the optical flow) is interpolated from them instead of
            painted (see :mod:`painterly.video.temporal`); frames after cuts, disocclusions and fast motion
            are still painted. Nearly twice as fast where the model dominates; steadier, a little softer.
        model, engine: as for :func:`painterly.stylize` / :func:`painterly.transfer`.
        fps: output frame rate (default: the input's; 25 for a folder of frames, where it is the input's too).
        start, duration: the part of the input to process, in seconds.
        resume: continue an interrupted run from its finished segments (``OUTPUT.parts/``).
        segment_seconds: length of the resumable segments.
        progress: show a progress bar (frames, fps, ETA) on stderr.
        painter: a function from an RGB frame to its stylized version, replacing style/style_image.
        on_segment: called with each segment's index after it is finished (for tests and progress).
        threaded: decode (with the optical flow) and encode in background threads while the model runs, the model
            on every physical core (``$PAINTERLY_THREADS`` or ``$OMP_NUM_THREADS`` set that number);
            False: one frame after the other in the calling thread (the same output).

    glibc's allocator keeps freed blocks for reuse from here on (:func:`painterly.malloc.keep_freed_memory`;
    ``PAINTERLY_KEEP_MEMORY=0`` opts out).
    """
    out = Path(output)
    kind = output_kind(out)
    if not 0.0 <= float(temporal) <= 1.0:
        raise PainterlyError(f"--temporal must be between 0 and 1, got {temporal}")
    if not 0.0 <= float(strength) <= 1.0:
        raise PainterlyError(f"--strength must be between 0 and 1, got {strength}")
    if size is not None and int(size) < 16:
        raise PainterlyError(f"--size must be at least 16 pixels, got {size}")
    stroke_scale = check_stroke_scale(stroke_scale)
    if fps is not None and not 0 < float(fps) <= 240:
        raise PainterlyError(f"--fps must be between 0 and 240, got {fps}")
    if start < 0 or (duration is not None and not duration > 0):
        raise PainterlyError("--start must be >= 0 and --duration > 0")
    if not segment_seconds > 0:
        raise PainterlyError("segment length must be > 0 seconds")

    src = FrameSource(input)
    if out.resolve() == src.path.resolve():
        raise PainterlyError(f"the output '{out}' is the input: choose another file")
    if fps is not None:
        src.with_fps(Fraction(fps).limit_denominator(1001))
    info = src.info
    rate = Fraction(fps).limit_denominator(1001) if fps is not None else info.fps
    t_start = Fraction(start).limit_denominator(1_000_000)
    t_end = t_start + Fraction(duration).limit_denominator(1_000_000) if duration is not None else None
    if info.duration is not None and t_start >= info.duration:
        raise PainterlyError(f"--start {start:g} s is past the end of '{input}' ({info.duration:.2f} s)")

    # Sizes: displayed (W, H) of the output, and the coded size the frames are decoded at.
    dw, dh = info.display_size
    scale = int(size) / max(dw, dh) if size else 1.0
    ew, eh = _even(dw * scale), _even(dh * scale)
    physical = kind in ("gif", "frames")  # rotation applied to the pixels, not kept as metadata
    coded = (eh, ew) if info.rotation % 180 else (ew, eh)

    work = work_folder(out)
    settings = {"input": _fingerprint(src.path) if not info.is_folder else str(src.path.resolve()),
                "style": style if not isinstance(style, Mapping) else dict(style), "style_image": str(style_image),
                "style_size": style_size, "size": [ew, eh], "strength": strength, "preserve_color": preserve_color,
                "temporal": temporal, "interpolate": bool(interpolate), "stroke_scale": stroke_scale,
                "model": str(model), "engine": engine, "fps": str(rate), "start": str(t_start),
                "end": str(t_end), "segment_seconds": segment_seconds, "kind": kind,
                "painter": getattr(painter, "__qualname__", None)}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    done: list[int] = []  # frames in each finished segment
    resumed = 0
    try:
        if resume and (work / MANIFEST).is_file():
            manifest = json.loads((work / MANIFEST).read_text(encoding="utf-8"))
            if manifest.get("key") != key:
                raise PainterlyError(f"'{work}' holds a run with other input or options; run without --resume to "
                                     "start over")
            done = list(manifest["segments"])
            resumed = len(done)
        elif work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        if kind == "frames":
            out.mkdir(parents=True, exist_ok=True)
        probe = work / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PainterlyError(f"cannot write '{out}': {exc.strerror or exc}") from None

    keep_freed_memory()  # every frame allocates and frees the same large buffers
    model_threads, cv_threads = _thread_split(threaded)
    with limited(model_threads) as apply_to_torch, opencv_threads(cv_threads):
        paint = painter or _make_painter(style, style_image, style_size, strength, preserve_color, model, engine,
                                         stroke_scale)
        apply_to_torch()  # the model may have imported torch
        per_segment = max(1, round(Fraction(segment_seconds).limit_denominator(1000) * rate))
        horizon = t_end if t_end is not None else (Fraction(info.duration).limit_denominator(1_000_000)
                                                   if info.duration else None)
        total = math.ceil((horizon - t_start) * rate - Fraction(1, 1000)) if horizon is not None else None
        bar = _progress(total, sum(done), progress)
        state = _load_state(work / f"state_{len(done) - 1:05d}.npz") if done else TemporalState()
        blender = TemporalBlender(float(temporal), state, interpolate=bool(interpolate))
        finished = bool(done) and done[-1] < per_segment
        try:
            while not finished:
                k = len(done)
                seg_start = t_start + Fraction(sum(done)) / rate
                frames = src.frames(seg_start, rate, coded, t_end)
                count = _run_segment(k, frames, paint, blender, work, out, kind, coded, rate, info.rotation, physical,
                                     per_segment, sum(done), bar, threaded)
                if count == 0:
                    break
                _save_state(work / f"state_{k:05d}.npz", blender.state)
                done.append(count)
                atomic_write_bytes(work / MANIFEST, json.dumps({"key": key, "segments": done}).encode())
                finished = count < per_segment
                if on_segment is not None:
                    on_segment(k)
        finally:
            bar.close()
    frames_total = sum(done)
    if frames_total == 0:
        raise PainterlyError(f"no frames to stylize in '{input}'" + (f" after {start:g} s" if start else ""))

    audio = False
    if kind != "frames":
        segments = [work / f"segment_{k:05d}.{_segment_ext(kind)}" for k in range(len(done))]
        seconds = [Fraction(n) / rate for n in done]
        audio_source = src.path if info.audio and not info.is_folder else None
        try:
            audio = join_segments(segments, seconds, out, kind, audio_source, t_start, t_start + sum(seconds))
        except OSError as exc:
            raise PainterlyError(f"cannot write '{out}': {exc.strerror or exc}") from None
    shutil.rmtree(work, ignore_errors=True)
    return VideoResult(out, frames_total, rate, (ew, eh), audio, blender.cuts, resumed, blender.interpolated)


def _thread_split(threaded: bool) -> tuple[int | None, int | None]:
    """Intra-op threads of (the model, OpenCV): threaded, every physical core for the model and one for OpenCV
    (decoding, the flow, the warps and encoding take about a seventh of the CPU time of a 480p frame and fit
    between the model's operations); else None, None: the engines' and OpenCV's defaults. On a quiet 2-core
    CPU the model on both cores ran the 480p clips about 1.45x as fast as on one; on a machine busy with other work,
    fewer threads (``PAINTERLY_THREADS``) can be faster."""
    if not threaded:
        return None, None
    return configured() or max(1, physical_cores()), 1


def _segment_ext(kind: str) -> str:
    return "webm" if kind == "webm" else "mp4"


class _Empty(Exception):
    """A segment with no frames (the input ended exactly at the previous segment's end)."""


def _run_segment(k: int, frames: Iterator[np.ndarray], paint: Painter, blender: TemporalBlender, work: Path,
                 out: Path, kind: str, coded: tuple[int, int], rate: Fraction, rotation: int, physical: bool,
                 limit: int, first_index: int, bar, threaded: bool) -> int:
    """Stylize up to ``limit`` frames into segment ``k``; returns how many there were."""
    from PIL import Image

    from ..imageio import save_image

    def with_motion() -> Iterator[tuple[np.ndarray, Motion | None]]:
        prev = blender.state.prev_input
        for frame in _take(frames, limit):
            if physical and rotation:
                frame = rotate(frame, rotation)
            yield frame, blender.motion(prev, frame)
            prev = frame

    if kind == "frames":
        written = [first_index]

        def save(result: np.ndarray) -> None:
            written[0] += 1
            save_image(Image.fromarray(result), out / FRAME_NAME.format(written[0]))

        try:
            return _stream(with_motion(), paint, blender, save, bar, threaded)
        except OSError as exc:
            raise PainterlyError(f"cannot write '{out}': {exc.strerror or exc}") from None
    size = (coded[1], coded[0]) if physical and rotation % 180 else coded
    try:
        with atomic_path(work / f"segment_{k:05d}.{_segment_ext(kind)}") as tmp:
            writer = SegmentWriter(tmp, kind, size, rate, 0 if physical else rotation)
            try:
                count = _stream(with_motion(), paint, blender, writer.write, bar, threaded)
            finally:
                writer.close()
            if count == 0:
                raise _Empty
    except _Empty:
        return 0
    except OSError as exc:  # the disk filled up, the folder went away ...
        raise PainterlyError(f"cannot write '{out}': {exc.strerror or exc}") from None
    return count


Painted = tuple[np.ndarray, np.ndarray, "Motion | None"]  # a frame, its stylization, its motion


def _stream(motions: Iterator[tuple[np.ndarray, Motion | None]], paint: Painter, blender: TemporalBlender,
            write: Callable[[np.ndarray], None], bar, threaded: bool) -> int:
    """Paint, blend and write every frame; returns how many. ``threaded``: decoding with the optical flow and
    blending with encoding run in their own threads (:mod:`painterly.video.stages`), overlapping the model,
    which runs here; otherwise all of it runs here, one frame after the other. The output is the same.
    With ``blender.interpolate`` a frame that can follow the previous output is held back until the next
    frame is painted, then interpolated between the two (:meth:`TemporalBlender.between`)."""

    def finish(item: tuple[tuple[np.ndarray, Motion] | None, Painted]) -> None:
        held, (frame, styled, motion) = item
        if held is not None:
            write(blender.between(held[0], held[1], styled, motion))
            bar.update(1)
        write(blender.blend(frame, styled, motion))
        bar.update(1)

    def items(source: Iterator[tuple[np.ndarray, Motion | None]]):
        held: tuple[np.ndarray, Motion] | None = None
        for frame, motion in source:
            if held is not None and not interpolable(held[1], motion):
                yield None, (held[0], _painted(paint, held[0]), held[1])  # paint the held frame after all
                held = None
            if held is None and blender.interpolate and motion is not None and not motion.cut:
                held = (frame, motion)  # may be interpolated once the next frame is painted
                continue
            yield held, (frame, _painted(paint, frame), motion)
            held = None
        if held is not None:  # the segment's last frame
            yield None, (held[0], _painted(paint, held[0]), held[1])

    count = 0
    if not threaded:
        for item in items(motions):
            finish(item)
            count += 1 + (item[0] is not None)
        return count
    source = prefetch(motions)
    try:
        with Sink(finish) as sink:
            for item in items(source):
                sink.put(item)
                count += 1 + (item[0] is not None)
            sink.close()
    finally:
        source.close()  # stops the decode thread now, also when the model raised
    return count


def _painted(paint: Painter, frame: np.ndarray) -> np.ndarray:
    """``paint(frame)`` at the frame's size."""
    styled = paint(frame)
    if styled.shape != frame.shape:
        from PIL import Image

        styled = np.asarray(Image.fromarray(styled).resize((frame.shape[1], frame.shape[0]),
                                                           Image.Resampling.LANCZOS))
    return styled


def _take(items: Iterator[np.ndarray], n: int) -> Iterator[np.ndarray]:
    for i, item in enumerate(items):
        if i >= n:
            return
        yield item


def _progress(total: int | None, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="frame", disable=not enabled, dynamic_ncols=True,
                desc="painterly video", smoothing=0.1)
