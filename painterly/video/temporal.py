"""Temporal consistency: the previous stylized frame, moved along the optical flow of the input, is
blended into the current one wherever the flow is trustworthy; scene cuts reset the state.

The flow is estimated on copies of the frames at most :data:`FLOW_SIDE` pixels long (the blend needs the
motion of regions, not of single pixels) and scaled up; the weight of the previous frame at a pixel is
``temporal`` x (the forward-backward check passes) x exp(-|I_t - warp(I_t-1)| / :data:`PHOTO_SIGMA`), the
last term letting changes in the input itself (lighting, flow errors) through at once.

Interpolation (``interpolate=True``): a frame between two painted ones may skip the model. Its output is the
previous output moved forward and the next frame's stylization moved back along the same flows, each
weighted by its own consistency check; a frame with more than :data:`MAX_HOLES` of its pixels seen by
neither neighbour (a disocclusion, a fast motion, a cut) is painted instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flow import FlowEstimator, _cv2, consistent, gray, warp

#: A cut when the mean absolute luma difference of 64 px thumbnails exceeds this (0..255) ...
CUT_DIFF = 40.0
#: ... or when fewer than this fraction of the pixels have a consistent flow.
CUT_CONSISTENT = 0.35
#: Per-pixel photometric check: the blend weight falls off as exp(-|I_t - warp(I_t-1)| / this) (0..255).
PHOTO_SIGMA = 24.0
#: Longest side the flow is estimated at.
FLOW_SIDE = 360
#: An interpolated pixel is a hole when neither neighbour's weight there reaches this ...
HOLE_WEIGHT = 0.25
#: ... and a frame with more than this fraction of holes is painted, not interpolated.
MAX_HOLES = 0.01


def _thumb(luma: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.resize(luma, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)


def is_cut(prev_luma: np.ndarray, cur_luma: np.ndarray) -> bool:
    """A hard cut between two frames, by the difference of their thumbnails."""
    return float(np.abs(_thumb(prev_luma) - _thumb(cur_luma)).mean()) > CUT_DIFF


@dataclass
class TemporalState:
    """What carries from one frame to the next: the previous input and output frames (uint8 RGB)."""

    prev_input: np.ndarray | None = None
    prev_output: np.ndarray | None = None


@dataclass
class Motion:
    """How the previous frame maps onto the current one: the flow current -> previous (H, W, 2) and the
    weight (H, W) in 0..1 the previous output may have at each pixel; ``cut`` when it may have none.
    With interpolation also the other way: ``ahead``, the flow previous -> current (on the previous frame's
    grid) and ``ahead_weight``, the weight the current output may have on the previous frame."""

    backward: np.ndarray | None
    weight: np.ndarray | None
    cut: bool = False
    ahead: np.ndarray | None = None
    ahead_weight: np.ndarray | None = None


def _upscale(flow: np.ndarray, valid: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A flow and its validity estimated on a thumbnail, at ``size`` (h, w)."""
    cv2 = _cv2()
    h, w = size
    sy, sx = h / flow.shape[0], w / flow.shape[1]
    return (cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32([sx, sy]),
            cv2.resize(valid, (w, h), interpolation=cv2.INTER_LINEAR))


def _weight(valid: np.ndarray, here: np.ndarray, there: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The blend weight of ``there`` moved onto ``here`` (luma frames) along ``flow``."""
    photo = np.abs(warp(there, flow).astype(np.float32) - here.astype(np.float32))
    return valid * np.exp(-photo / PHOTO_SIGMA)


def estimate_motion(prev_in: np.ndarray, frame: np.ndarray, flow: FlowEstimator, ahead: bool = False) -> Motion:
    """The motion from ``prev_in`` to ``frame`` (uint8 RGB, same size), or a cut; ``ahead``: both ways."""
    cv2 = _cv2()
    g0, g1 = gray(prev_in), gray(frame)
    if is_cut(g0, g1):
        return Motion(None, None, True)
    h, w = g1.shape
    scale = min(1.0, FLOW_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        s0, s1 = (cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (g0, g1))
    else:
        s0, s1 = g0, g1
    backward, forward = flow(s1, s0), flow(s0, s1)
    valid = consistent(backward, forward).astype(np.float32)
    if valid.mean() < CUT_CONSISTENT:
        return Motion(None, None, True)
    valid_ahead = consistent(forward, backward).astype(np.float32) if ahead else None
    if scale < 1.0:
        backward, valid = _upscale(backward, valid, (h, w))
        if ahead:
            forward, valid_ahead = _upscale(forward, valid_ahead, (h, w))
    motion = Motion(backward, _weight(valid, g1, g0, backward))
    if ahead:
        motion.ahead, motion.ahead_weight = forward, _weight(valid_ahead, g0, g1, forward)
    return motion


def interpolable(motion: Motion | None, next_motion: Motion | None) -> bool:
    """Whether the frame between the previous output (``motion``: previous -> this frame) and the next
    frame (``next_motion``: this -> next, with ``ahead``) can be interpolated instead of painted."""
    usable = [m is not None and not m.cut and m.weight is not None for m in (motion, next_motion)]
    if not all(usable) or next_motion.ahead_weight is None:
        return False
    seen = np.maximum(motion.weight, next_motion.ahead_weight)
    return float((seen < HOLE_WEIGHT).mean()) <= MAX_HOLES


class TemporalBlender:
    """``blend(input, stylized)`` -> the output frame: ``stylized`` pulled towards the previous output
    (warped) by ``strength`` (0: off, 1: as much as the flow allows) where the flow is consistent."""

    def __init__(self, strength: float, state: TemporalState | None = None, interpolate: bool = False):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"temporal strength must be between 0 and 1, got {strength}")
        self.strength, self.interpolate = strength, interpolate
        self.state = state or TemporalState()
        self.flow = FlowEstimator("dis") if strength > 0 or interpolate else None
        self.cuts = self.interpolated = 0

    def motion(self, prev_in: np.ndarray | None, frame: np.ndarray) -> Motion | None:
        """The motion from ``prev_in`` to ``frame`` (None when blending is off or there is no previous frame).
        Depends on the input only, so it may be computed ahead, in another thread."""
        if self.flow is None or prev_in is None or prev_in.shape != frame.shape:
            return None
        return estimate_motion(prev_in, frame, self.flow, ahead=self.interpolate)

    def blend(self, frame: np.ndarray, stylized: np.ndarray, motion: Motion | None | bool = True) -> np.ndarray:
        """The output for ``frame``; ``motion`` from :meth:`motion` (``True``: compute it here)."""
        if motion is True:
            motion = self.motion(self.state.prev_input, frame)
        out = stylized
        if motion is not None and motion.cut:
            self.cuts += 1
        elif motion is not None and self.state.prev_output is not None and self.strength > 0:
            moved = warp(self.state.prev_output, motion.backward).astype(np.float32)
            w = (self.strength * motion.weight)[..., None]
            out = np.clip(stylized * (1 - w) + moved * w + 0.5, 0, 255).astype(np.uint8)
        self.state = TemporalState(frame, out)
        return out

    def between(self, frame: np.ndarray, motion: Motion, next_stylized: np.ndarray, next_motion: Motion) -> np.ndarray:
        """The output for ``frame`` without painting it (see :func:`interpolable`): the previous output moved
        forward and the next frame's stylization moved back, each by its weight; where neither is trusted,
        their mean."""
        prev = warp(self.state.prev_output, motion.backward).astype(np.float32)
        nxt = warp(next_stylized, next_motion.ahead).astype(np.float32)
        wp, wn = motion.weight[..., None], next_motion.ahead_weight[..., None]
        total = wp + wn
        mixed = np.where(total > 1e-3, (prev * wp + nxt * wn) / np.maximum(total, 1e-3), 0.5 * (prev + nxt))
        out = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        self.state = TemporalState(frame, out)
        self.interpolated += 1
        return out
