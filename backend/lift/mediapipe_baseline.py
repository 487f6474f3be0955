"""Baseline lifter: MediaPipe's own per-frame world landmarks as 3D evidence (no temporal model)."""

from __future__ import annotations

import numpy as np

from backend.detect.types import SubjectTrack
from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.lift.base import LiftResult


class MediaPipeBaselineLifter:
    """Root-relative MediaPipe world landmarks, re-centred on the mid-hip point."""

    name = "mediapipe"

    def lift(self, track: SubjectTrack) -> LiftResult:
        keypoints = track.body_keypoints()
        points, has = keypoints.world, keypoints.present
        conf = keypoints.image[..., 2].copy()
        conf[:, ~has] = 0.0
        conf[~track.valid] = 0.0
        hips = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
        root = points[:, hips].mean(axis=1, keepdims=True)
        rel = (points - root).astype(np.float32)
        rel[conf == 0] = 0.0
        return LiftResult(rel, conf.astype(np.float32), self.name)
