"""The lift stage's interface: every lifter returns a LiftResult over the fitter's keypoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from backend.detect.types import SubjectTrack


@dataclass
class LiftResult:
    """3D evidence for the fitter, in the keypoint order of ``skeleton.KEYPOINT_NAMES``."""

    keypoints3d: np.ndarray
    """(T, K, 3) float32: metres, relative to the mid-hip point, camera-aligned axes
    (x right, y down, z away from the camera)."""
    confidence: np.ndarray
    """(T, K) float32 in [0, 1]; 0 where there is no evidence (missing keypoint or frame)."""
    method: str


class Lifter(Protocol):
    """A lift-stage implementation."""

    name: str

    def lift(self, track: SubjectTrack) -> LiftResult:
        """3D keypoints for one tracked subject."""
        ...
