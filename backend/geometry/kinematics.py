"""Motion of keypoint sequences: root-relative positions and accelerations (numpy).

The acceleration of frame t is the second difference ``x[t+1] - 2 x[t] + x[t-1]`` of root-relative
points (units per frame^2); the pipeline's jitter metric and the benchmarks' acceleration error both
use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.geometry.skeleton import KEYPOINT_NAMES

MID_HIP: tuple[int, int] = (KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip"))


def root_relative(points: np.ndarray, root: Sequence[int] = MID_HIP) -> np.ndarray:
    """(T, K, 3) points minus the mean of the ``root`` keypoints (mid-hip by default)."""
    points = np.asarray(points, dtype=np.float64)
    return points - points[:, list(root)].mean(axis=1, keepdims=True)


def accelerations(points: np.ndarray, root: Sequence[int] = MID_HIP) -> np.ndarray:
    """(T - 2, K, 3) second differences of root-relative points (T, K, 3), for frames 1..T-2."""
    rel = root_relative(points, root)
    return rel[2:] - 2.0 * rel[1:-1] + rel[:-2]


def interior_valid(valid: np.ndarray) -> np.ndarray:
    """(T - 2,) frames 1..T-2 whose neighbours and themselves are all valid."""
    v = np.asarray(valid, dtype=bool)
    return v[2:] & v[1:-1] & v[:-2]


def mean_acceleration_mm(points: np.ndarray, valid: np.ndarray, root: Sequence[int] = MID_HIP) -> float:
    """Mean acceleration norm (mm/frame^2) of root-relative points (T, K, 3) in metres, over runs of
    three valid frames; NaN when there are none."""
    if len(points) < 3:
        return float("nan")
    ok = interior_valid(valid)
    if not ok.any():
        return float("nan")
    return float(np.linalg.norm(accelerations(points, root)[ok], axis=-1).mean() * 1000.0)
