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

    def __init__(self, learned: Lifter, detector: Lifter, weight: float, agreement_m: float = 0.0) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"the fusion weight must lie in [0, 1], not {weight}")
        if agreement_m < 0.0:
            raise ValueError(f"the agreement scale must not be negative, not {agreement_m}")
        self.learned, self.detector, self.weight = learned, detector, weight
        self.agreement_m = agreement_m

    def lift(self, track: SubjectTrack) -> LiftResult:
        a, b = self.learned.lift(track), self.detector.lift(track)
        wa = a.confidence * self.weight
        wb = b.confidence * (1.0 - self.weight)
        total = wa + wb
        mean = (a.keypoints3d * wa[..., None] + b.keypoints3d * wb[..., None]) / np.maximum(total, 1e-6)[..., None]
        # Where MediaPipe has no evidence (missing keypoint or frame), the learned lifter's guess stands.
        points = np.where((total > 0)[..., None], mean, a.keypoints3d).astype(np.float32)
        confidence = np.maximum(a.confidence, b.confidence)
        if self.agreement_m > 0:
            confidence = confidence * agreement(a.keypoints3d, b.keypoints3d, b.confidence, self.agreement_m)
        return LiftResult(points, confidence.astype(np.float32), self.name)


def agreement(a: np.ndarray, b: np.ndarray, b_confidence: np.ndarray, scale_m: float) -> np.ndarray:
    """How much two 3D sources agree per keypoint, as a factor of the fused confidence.

    Args:
        a, b: (T, K, 3) root-relative keypoints, metres; b_confidence: (T, K) (0: b has no evidence);
        scale_m: the distance at which agreement has fallen to exp(-1).
    Returns:
        (T, K) in [0.25, 1]: 0.25 + 0.75 exp(-(|a - b| / scale_m)^2), and 1 where b has no evidence.
    """
    distance = np.linalg.norm(a - b, axis=-1)
    factor = 0.25 + 0.75 * np.exp(-((distance / scale_m) ** 2))
    return np.where(b_confidence > 0, factor, 1.0)
