"""Temporal consistency: the previous stylized frame, moved along the optical flow of the input, is
blended into the current one wherever the flow is trustworthy; scene cuts reset the state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flow import FlowEstimator, consistent, gray, warp

#: A cut when the mean absolute luma difference of 64 px thumbnails exceeds this (0..255) ...
CUT_DIFF = 40.0
#: ... or when fewer than this fraction of the pixels have a consistent flow.
CUT_CONSISTENT = 0.35
#: Per-pixel photometric check: the blend weight falls off as exp(-|I_t - warp(I_t-1)| / this) (0..255).
PHOTO_SIGMA = 24.0


def _thumb(luma: np.ndarray) -> np.ndarray:
    from .flow import _cv2

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


class TemporalBlender:
    """``blend(input, stylized)`` -> the output frame: ``stylized`` pulled towards the previous output
    (warped) by ``strength`` (0: off, 1: as much as the flow allows) where the flow is consistent."""

    def __init__(self, strength: float, state: TemporalState | None = None):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"temporal strength must be between 0 and 1, got {strength}")
        self.strength = strength
        self.state = state or TemporalState()
        self.flow = FlowEstimator("dis") if strength > 0 else None
        self.cuts = 0

    def blend(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        out = stylized
        prev_in, prev_out = self.state.prev_input, self.state.prev_output
        if self.flow is not None and prev_in is not None and prev_in.shape == frame.shape:
            out = self._blend(prev_in, prev_out, frame, stylized)
        self.state = TemporalState(frame, out)
        return out

    def _blend(self, prev_in: np.ndarray, prev_out: np.ndarray, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        g0, g1 = gray(prev_in), gray(frame)
        if is_cut(g0, g1):
            self.cuts += 1
            return stylized
        backward, forward = self.flow(g1, g0), self.flow(g0, g1)
        valid = consistent(backward, forward)
        if valid.mean() < CUT_CONSISTENT:
            self.cuts += 1
            return stylized
        photo = np.abs(warp(g0, backward).astype(np.float32) - g1.astype(np.float32))
        weight = self.strength * valid * np.exp(-photo / PHOTO_SIGMA)
        moved = warp(prev_out, backward).astype(np.float32)
        w = weight[..., None].astype(np.float32)
        return np.clip(stylized.astype(np.float32) * (1 - w) + moved * w + 0.5, 0, 255).astype(np.uint8)
