"""Video in and out with PyAV (ffmpeg ships in its wheel): decoding onto a constant frame-rate timeline,
H.264 / VP9 / GIF segment encoding, a folder of frames as input or output, and the final remux that joins
the segments and copies the audio through.

Frames are ``(H, W, 3)`` uint8 RGB arrays in the *coded* orientation; the rotation of the display matrix is
kept as metadata where the container has it (mp4, mov, webm) and applied to the pixels where it has not
(gif, frame folders).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import PainterlyError
from ..imageio import IMAGE_EXTENSIONS, find_images, read_image

#: Output containers written to a file (anything else with no suffix is a folder of frames).
VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".m4v": "mp4", ".webm": "webm", ".gif": "gif"}
#: Input containers checked by suffix before ffmpeg is asked (anything ffmpeg opens is accepted).
VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".gif", ".avi"}
#: Audio codecs each container takes as they are (others are re-encoded).
AUDIO_COPY = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "webm": {"opus", "vorbis"},
    "gif": set(),
}
#: Audio encoder when the source's audio must be re-encoded.
AUDIO_ENCODER = {"mp4": "aac", "mov": "aac", "webm": "libopus"}
#: Frame rate of a folder of frames unless ``fps`` is given.
DEFAULT_FOLDER_FPS = Fraction(25)
#: Frame names written to an output folder.
FRAME_NAME = "frame_{:06d}.png"
_EPS = Fraction(1, 100_000)


#: Frame rates a measured rate within 1% is taken to be (timestamps in ms or 1/100 s only approximate them).
COMMON_RATES = tuple(Fraction(r) for r in (8, 10, 12, 15, 16, 20, 24, 25, 30, 48, 50, 60, 90, 100, 120)) + tuple(
    Fraction(n, 1001) for n in (24000, 30000, 48000, 60000))


def snap_rate(rate: Fraction) -> Fraction:
    """The common frame rate nearest to ``rate`` when within 1% (else ``rate``, as a simple fraction)."""
    best = min(COMMON_RATES, key=lambda r: abs(r - rate))
    return best if abs(best - rate) <= rate / 100 else rate.limit_denominator(1001)


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input."""

    width: int  # coded size
    height: int
    fps: Fraction
    duration: float | None  # seconds, when known
    rotation: int  # display rotation, degrees counterclockwise (0, 90, 180, 270)
    audio: bool
    is_folder: bool = False

    @property
    def display_size(self) -> tuple[int, int]:
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


def _av():
    try:
        import av
    except ImportError:
        raise PainterlyError("video needs PyAV and OpenCV: pip install 'painterly[video]'") from None
    return av


def output_kind(path: str | os.PathLike) -> str:
    """``"mp4"``, ``"mov"``, ``"webm"``, ``"gif"`` or ``"frames"`` (a folder) for an output path; a video or
    image extension that cannot be written is refused."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in VIDEO_FORMATS:
        return VIDEO_FORMATS[suffix]
    if suffix in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS | {".flv", ".wmv", ".mpg", ".mpeg", ".ts"} and not p.is_dir():
        raise PainterlyError(f"cannot write '{p}': unsupported extension (use .mp4, .mov, .webm, .gif, "
                             "or a folder for PNG frames)")
    return "frames"


def rotate(frame: np.ndarray, degrees: int) -> np.ndarray:
    """The frame as displayed: rotated counterclockwise by ``degrees`` (a multiple of 90)."""
    k = (degrees // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, k)) if k else frame


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


class FrameSource:
    """A video file or a folder of images, read as frames on a constant-rate timeline.

    ``frames(start, fps, size)`` yields, for output times ``start + i / fps``, the input frame shown at
    that time (the last one whose timestamp is not later), resized to ``size`` (coded W, H).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise PainterlyError(f"cannot read video '{self.path}': no such file or folder")
        self.files: list[Path] = []
        if self.path.is_dir():
            self.files = sorted(find_images(self.path), key=_natural_key)
            if not self.files:
                raise PainterlyError(f"no frames (images) found in folder '{self.path}'")
            first = read_image(self.files[0]).rgb
            self.info = VideoInfo(first.width, first.height, DEFAULT_FOLDER_FPS,
                                  len(self.files) / DEFAULT_FOLDER_FPS, 0, False, True)
            return
        if self.path.suffix.lower() in IMAGE_EXTENSIONS - {".gif"}:
            raise PainterlyError(f"'{self.path}' is an image, not a video: use 'painterly stylize' for images")
        self.info = self._probe()

    def _open(self):
        av = _av()
        try:
            return av.open(str(self.path))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise PainterlyError(f"cannot read video '{self.path}': not a video or damaged "
                                 f"({getattr(exc, 'strerror', None) or exc})") from None

    def _probe(self) -> VideoInfo:
        av = _av()
        with self._open() as c:
            if not c.streams.video:
                raise PainterlyError(f"cannot read video '{self.path}': it has no video stream")
            vs = c.streams.video[0]
            fps = vs.average_rate or vs.guessed_rate or vs.base_rate
            duration = None
            if vs.duration is not None and vs.time_base:
                duration = float(vs.duration * vs.time_base)
            elif c.duration:
                duration = c.duration / 1_000_000
            rotation = 0
            try:
                for frame in c.decode(vs):
                    rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
                    break
                else:
                    raise PainterlyError(f"cannot read video '{self.path}': it has no frames")
            except av.FFmpegError as exc:
                raise PainterlyError(f"cannot read video '{self.path}': damaged ({exc})") from None
            w, h = vs.codec_context.width, vs.codec_context.height
            if "gif" in c.format.name and duration:  # delays in 1/100 s only approximate the rate: count frames
                c.seek(0)
                fps = Fraction(sum(1 for p in c.demux(vs) if p.size)) / Fraction(duration).limit_denominator(1000)
            if not fps or fps <= 0 or fps > 1000:
                fps = Fraction(25)
            return VideoInfo(w, h, snap_rate(Fraction(fps)), duration, rotation - rotation % 90, bool(c.streams.audio))

    def with_fps(self, fps: Fraction) -> None:
        """Set the rate of a folder of frames (a video file's own timestamps are kept)."""
        if self.info.is_folder:
            self.info = VideoInfo(self.info.width, self.info.height, fps, len(self.files) / fps, 0, False, True)

    def frames(self, start: Fraction, fps: Fraction, size: tuple[int, int],
               end: Fraction | None = None) -> Iterator[np.ndarray]:
        timed = self._folder_frames(start, size) if self.info.is_folder else self._file_frames(start, size)
        return _resample(timed, start, 1 / fps, end)

    def _folder_frames(self, start: Fraction, size: tuple[int, int]) -> Iterator[tuple[Fraction, Fraction, object]]:
        from PIL import Image

        step = 1 / self.info.fps
        first = max(0, int(start / step) - 1)
        for i in range(first, len(self.files)):
            img = read_image(self.files[i]).rgb
            if img.size != size:
                img = img.resize(size, Image.Resampling.BICUBIC)
            yield i * step, step, np.asarray(img)

    def _file_frames(self, start: Fraction, size: tuple[int, int]) -> Iterator[tuple[Fraction, Fraction, object]]:
        av = _av()
        with self._open() as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            tb = vs.time_base
            t0 = Fraction(vs.start_time or 0) * tb
            default_step = 1 / self.info.fps
            if start > 0:
                try:
                    c.seek(int((t0 + start) / tb), stream=vs, backward=True, any_frame=False)
                except av.FFmpegError:
                    c.seek(0)
            try:
                for frame in c.decode(vs):
                    if frame.pts is None:
                        continue
                    t = Fraction(frame.pts) * tb - t0
                    step = Fraction(frame.duration) * tb if frame.duration else default_step
                    yield t, step, _Lazy(frame, size)
            except av.FFmpegError as exc:
                raise PainterlyError(f"cannot read video '{self.path}': damaged or truncated ({exc})") from None


class _Lazy:
    """A decoded frame converted to RGB at the working size only when it is used."""

    __slots__ = ("frame", "size")

    def __init__(self, frame, size: tuple[int, int]):
        self.frame, self.size = frame, size

    def array(self) -> np.ndarray:
        w, h = self.size
        return self.frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()


def _resample(timed: Iterator[tuple[Fraction, Fraction, object]], start: Fraction, step: Fraction,
              end: Fraction | None) -> Iterator[np.ndarray]:
    """Frames at ``start + i * step`` (before ``end``) from (time, duration, frame) in time order.

    At each time: the frame on display then, where a frame counts from ``min(step, its predecessor's
    duration) / 2`` before its timestamp: the nearest frame when the rates are steady (which absorbs
    timestamps rounded to ms or 1/100 s), the held frame when the input has gaps.
    """
    i = 0
    cur = cur_dur = cur_end = None
    for t, dur, frame in timed:
        if cur is not None:
            lead = min(step, cur_dur) / 2
            while (target := start + i * step) < t - lead:
                if end is not None and target >= end - _EPS:
                    return
                yield _array(cur)
                i += 1
        cur, cur_dur, cur_end = frame, dur, t + dur
    if cur is None:
        return
    lead = min(step, cur_dur) / 2
    while (target := start + i * step) < cur_end - lead and (end is None or target < end - _EPS):
        yield _array(cur)
        i += 1


def _array(frame: object) -> np.ndarray:
    return frame.array() if isinstance(frame, _Lazy) else frame


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path next to ``path`` that replaces ``path`` when the block succeeds (else it is removed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix or path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class SegmentWriter:
    """Encode frames into one video file (a segment): H.264 for mp4/mov, VP9 for webm, H.264 near-lossless
    for gif (turned into a GIF when the segments are joined)."""

    def __init__(self, path: Path, kind: str, size: tuple[int, int], fps: Fraction, rotation: int):
        av = _av()
        self.container = av.open(str(path), "w", format="webm" if kind == "webm" else "mp4")
        if kind == "webm":
            stream = self.container.add_stream("libvpx-vp9", rate=fps)
            stream.options = {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
        else:
            stream = self.container.add_stream("libx264", rate=fps)
            # No B-frames: every segment's timestamps start at zero with dts == pts, so segments join by remuxing.
            stream.options = {"crf": "10" if kind == "gif" else "18", "preset": "veryfast", "bf": "0"}
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / fps
        if rotation and kind in ("mp4", "mov", "webm"):
            stream.set_display_rotation(rotation)
        self.stream, self.count = stream, 0

    def write(self, frame: np.ndarray) -> None:
        av = _av()
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = self.count
        self.count += 1
        self.container.mux(self.stream.encode(vf))

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()


def read_segment(path: Path) -> Iterator[np.ndarray]:
    """The frames of a finished segment (RGB)."""
    av = _av()
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def _packets(container, stream, offset: Fraction) -> Iterator[tuple[Fraction, object]]:
    for packet in container.demux(stream):
        if packet.dts is None:
            continue
        yield Fraction(packet.dts) * packet.time_base + offset, packet


def _video_packets(segments: list[Path], seconds: list[Fraction], out_stream) -> Iterator[tuple[Fraction, object]]:
    av = _av()
    offset = Fraction(0)
    for seg, length in zip(segments, seconds, strict=True):
        with av.open(str(seg)) as c:
            for t, packet in _packets(c, c.streams.video[0], offset):
                packet.pts = round((Fraction(packet.pts) * packet.time_base + offset) / out_stream.time_base)
                packet.dts = round(t / out_stream.time_base)
                packet.time_base = out_stream.time_base
                packet.stream = out_stream
                yield t, packet
        offset += length


def join_segments(segments: list[Path], seconds: list[Fraction], out: Path, kind: str,
                  audio_source: Path | None = None, start: Fraction = Fraction(0), end: Fraction | None = None) -> bool:
    """Join finished segments (each ``seconds[i]`` long) into ``out``, atomically, with the audio of
    ``audio_source`` between ``start`` and ``end`` copied (or re-encoded where the container needs it).
    Returns whether audio was written."""
    av = _av()
    with atomic_path(out) as tmp:
        if kind == "gif":
            _segments_to_gif(segments, tmp)
            return False
        with av.open(str(tmp), "w", format=kind) as oc, av.open(str(segments[0])) as first:
            vtemplate = first.streams.video[0]
            vout = oc.add_stream_from_template(vtemplate)
            vout.time_base = vtemplate.time_base
            streams = [_video_packets(segments, seconds, vout)]
            ac = None
            if audio_source is not None:
                ac = av.open(str(audio_source))
                if ac.streams.audio:
                    streams.append(_audio_packets(ac, oc, kind, start, end))
            try:
                for _, packet in heapq.merge(*streams, key=lambda tp: tp[0]):
                    oc.mux(packet)
            finally:
                if ac is not None:
                    ac.close()
            return len(streams) > 1


def _audio_packets(ic, oc, kind: str, start: Fraction, end: Fraction | None) -> Iterator[tuple[Fraction, object]]:
    """Audio packets of ``ic`` between ``start`` and ``end`` for the output ``oc``, timed from ``start``."""
    av = _av()
    ins = ic.streams.audio[0]
    t0 = Fraction(ins.start_time or 0) * ins.time_base
    if ins.codec_context.name in AUDIO_COPY[kind]:
        out = oc.add_stream_from_template(ins)
        out.time_base = ins.time_base
        if start > 0:
            ic.seek(int((t0 + start) / ins.time_base), stream=ins, backward=True, any_frame=False)
        for t, packet in _packets(ic, ins, -t0 - start):
            if t < -_EPS or (end is not None and t >= end - start):
                continue
            shift = round((t0 + start) / ins.time_base)
            packet.dts -= shift
            if packet.pts is not None:
                packet.pts -= shift
            packet.stream = out
            yield t, packet
        return
    rate = 48000 if kind == "webm" else (ins.codec_context.sample_rate or 48000)
    out = oc.add_stream(AUDIO_ENCODER[kind], rate=rate)
    layout = "stereo" if (ins.codec_context.channels or 2) >= 2 else "mono"
    out.layout = layout
    fmt = "flt" if kind == "webm" else "fltp"
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
    fifo = av.AudioFifo()
    frame_size = out.codec_context.frame_size or 960
    produced = 0
    stop = None if end is None else round((end - start) * rate)
    for frame in ic.decode(ins):
        if frame.pts is None:
            continue
        t = Fraction(frame.pts) * ins.time_base - t0 - start
        skip = max(0, round(-t * frame.sample_rate))
        if skip >= frame.samples:
            continue
        for rf in resampler.resample(frame):
            fifo.write(rf)
        if skip:  # drop the part before ``start`` (sample-exact enough at the resampled rate)
            fifo.read(min(fifo.samples, round(skip * rate / frame.sample_rate)))
        while fifo.samples >= frame_size and (stop is None or produced < stop):
            chunk = fifo.read(frame_size)
            chunk.pts = produced
            produced += chunk.samples
            for packet in out.encode(chunk):
                yield Fraction(packet.dts) * packet.time_base, packet
        if stop is not None and produced >= stop:
            break
    for packet in out.encode(None):
        yield Fraction(packet.dts) * packet.time_base, packet


def _segments_to_gif(segments: list[Path], out: Path) -> None:
    """A GIF of the segments' frames, each with its own adaptive palette."""
    from PIL import Image

    av = _av()
    with av.open(str(segments[0])) as c:
        rate = c.streams.video[0].average_rate or Fraction(10)
    with av.open(str(out), "w", format="gif") as oc:
        stream = oc.add_stream("gif", rate=rate)
        first = True
        n = 0
        for seg in segments:
            for frame in read_segment(seg):
                if first:
                    stream.width, stream.height = frame.shape[1], frame.shape[0]
                    stream.pix_fmt = "pal8"
                    first = False
                q = Image.fromarray(frame).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                pal = np.zeros((256, 4), np.uint8)
                colors = np.asarray(q.getpalette(), np.uint8).reshape(-1, 3)[:256]
                pal[: len(colors), 1:] = colors  # PyAV takes each entry as bytes A, R, G, B
                pal[:, 0] = 255
                vf = av.VideoFrame.from_ndarray((np.asarray(q), pal), format="pal8")
                vf.pts = n
                n += 1
                oc.mux(stream.encode(vf))
        oc.mux(stream.encode(None))
