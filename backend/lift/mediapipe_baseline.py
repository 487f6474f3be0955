"""Baseline lifter: MediaPipe's own per-frame world landmarks as 3D evidence (no temporal model)."""

from __future__ import annotations

import numpy as np

from backend.body.skeleton import KEYPOINT_NAMES, MEDIAPIPE_INDEX
from backend.detect.types import SubjectTrack
from backend.lift.base import LiftResult


def mediapipe_to_keypoints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Select the fitter's keypoints from MediaPipe's 33 landmarks.

    Args:
        values: (T, 33, C) per-landmark values.
    Returns:
        (T, K, C) values and a (K,) bool mask of keypoints that have a MediaPipe counterpart.
    """
    index = np.array(MEDIAPIPE_INDEX)
    has = index >= 0
    out = np.zeros(values.shape[:1] + (len(KEYPOINT_NAMES),) + values.shape[2:], dtype=np.float32)
    out[:, has] = values[:, index[has]]
    return out, has


class MediaPipeBaselineLifter:
    """Root-relative MediaPipe world landmarks, re-centred on the mid-hip point."""

    name = "mediapipe"

    def lift(self, track: SubjectTrack) -> LiftResult:
        points, has = mediapipe_to_keypoints(track.body_world)
        conf, _ = mediapipe_to_keypoints(track.body2d[..., 2:3])
        conf = conf[..., 0]
        conf[:, ~has] = 0.0
        conf[~track.valid] = 0.0
        hips = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
        root = points[:, hips].mean(axis=1, keepdims=True)
        rel = (points - root).astype(np.float32)
        rel[conf == 0] = 0.0
        return LiftResult(rel, conf.astype(np.float32), self.name)
