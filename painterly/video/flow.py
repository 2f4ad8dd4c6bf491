"""Optical flow between consecutive input frames (OpenCV's DIS), and the forward-backward check
that marks the pixels whose flow cannot be trusted (occluded, disoccluded, or out of the frame)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numpy as np

from ..errors import PainterlyError


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PainterlyError("video needs PyAV and OpenCV: pip install 'painterly[video]'") from None
    return cv2


@contextlib.contextmanager
def opencv_threads(threads: int | None) -> Iterator[None]:
    """OpenCV's worker threads within the block (None: unchanged); the previous number is restored after."""
    if threads is None:
        yield
        return
    cv2 = _cv2()
    before = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def gray(frame: np.ndarray) -> np.ndarray:
    """Luma (H, W) uint8 of an RGB frame."""
    cv2 = _cv2()
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Dense flow with OpenCV's DIS (``method="dis"``, the pipeline's) or Farneback (``"farneback"``,
    an independent estimator for measuring)."""

    def __init__(self, method: str = "dis"):
        cv2 = _cv2()
        self.method = method
        if method == "dis":
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        elif method != "farneback":
            raise ValueError(f"unknown flow method '{method}'")

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Flow (H, W, 2) from gray ``src`` to gray ``dst``: ``src[y, x]`` moves to ``dst[(y, x) + flow]``."""
        cv2 = _cv2()
        if self.method == "dis":
            return self._dis.calc(src, dst, None)
        return cv2.calcOpticalFlowFarneback(src, dst, None, 0.5, 4, 21, 3, 7, 1.5, 0)


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False  # shared by every call of this size
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``(x, y) + flow(x, y)`` (bilinear, edges replicated): with the flow from
    the current frame to the previous one, the previous frame moved onto the current one."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) bool: where the backward flow (current -> previous) and the forward flow (previous -> current)
    agree and land inside the frame (the test of Sundaram et al. 2010, as used by Ruder et al. 2016)."""
    h, w = backward.shape[:2]
    xs, ys = _grid(h, w)
    fw_at = warp(forward, backward)  # forward flow at the point each pixel came from
    total = fw_at + backward
    mismatch = (total ** 2).sum(-1)
    bound = 0.01 * ((fw_at ** 2).sum(-1) + (backward ** 2).sum(-1)) + 0.5
    px, py = xs + backward[..., 0], ys + backward[..., 1]
    inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    return (mismatch <= bound) & inside
