"""Temporal stability of a stylized video: the warping error.

For consecutive frames, the flow is computed on the *input* frames (Farneback: an estimator independent
of the DIS flow the pipeline blends along), the previous output is warped onto the current one, and the
mean absolute difference (0..1, over RGB) is taken over the pixels whose flow passes the forward-backward
check. Pairs across a scene cut (or with under 35% consistent pixels) are skipped. Lower is steadier.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .flow import FlowEstimator, consistent, gray, warp
from .temporal import CUT_CONSISTENT, is_cut


def pair_warping_error(prev_in: np.ndarray, cur_in: np.ndarray, prev_out: np.ndarray, cur_out: np.ndarray,
                       flow: FlowEstimator | None = None) -> float | None:
    """The warping error of one pair of frames, or None for a scene cut."""
    flow = flow or FlowEstimator("farneback")
    g0, g1 = gray(prev_in), gray(cur_in)
    if is_cut(g0, g1):
        return None
    backward, forward = flow(g1, g0), flow(g0, g1)
    valid = consistent(backward, forward)
    if valid.mean() < CUT_CONSISTENT:
        return None
    if prev_out.shape != prev_in.shape:
        raise ValueError(f"output frames {prev_out.shape} must have the input frames' shape {prev_in.shape}")
    diff = np.abs(cur_out.astype(np.float32) - warp(prev_out, backward).astype(np.float32)).mean(-1) / 255.0
    return float(diff[valid].mean())


def warping_error(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> dict:
    """Mean warping error over a clip: ``{"warping_error", "pairs", "cuts"}`` (frames: uint8 RGB, same sizes)."""
    flow = FlowEstimator("farneback")
    errors: list[float] = []
    cuts = 0
    prev = None
    for cur_in, cur_out in zip(inputs, outputs, strict=True):
        if prev is not None:
            e = pair_warping_error(prev[0], cur_in, prev[1], cur_out, flow)
            if e is None:
                cuts += 1
            else:
                errors.append(e)
        prev = (cur_in, cur_out)
    return {"warping_error": float(np.mean(errors)) if errors else None, "pairs": len(errors), "cuts": cuts}
