"""Fusion of two lifters' 3D evidence: a confidence-weighted mean, joint by joint.

The learned lifter and MediaPipe's own world landmarks are wrong in different places (the learned
one was trained on synthetic bodies and misjudges real footage; MediaPipe's 3D jitters and sometimes
swaps depth order). Their per-joint weighted mean errs less than either on real footage
(``python -m backend bench real``) and keeps most of the learned lifter's lead on the rendered bench.
"""

from __future__ import annotations

import numpy as np

from backend.detect.types import SubjectTrack
from backend.lift.base import Lifter, LiftResult


class FusedLifter:
    """``weight`` * the learned lifter + (1 - ``weight``) * MediaPipe's world landmarks, scaled per joint
    by each one's confidence (root-relative, camera axes, metres)."""

    name = "fused"

    def __init__(self, learned: Lifter, detector: Lifter, weight: float) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"the fusion weight must lie in [0, 1], not {weight}")
        self.learned, self.detector, self.weight = learned, detector, weight

    def lift(self, track: SubjectTrack) -> LiftResult:
        a, b = self.learned.lift(track), self.detector.lift(track)
        wa = a.confidence * self.weight
        wb = b.confidence * (1.0 - self.weight)
        total = wa + wb
        mean = (a.keypoints3d * wa[..., None] + b.keypoints3d * wb[..., None]) / np.maximum(total, 1e-6)[..., None]
        # Where MediaPipe has no evidence (missing keypoint or frame), the learned lifter's guess stands.
        points = np.where((total > 0)[..., None], mean, a.keypoints3d).astype(np.float32)
        return LiftResult(points, np.maximum(a.confidence, b.confidence).astype(np.float32), self.name)
