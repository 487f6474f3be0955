"""MediaPipe's 33 landmarks -> the fitter's keypoints (``KEYPOINT_NAMES``: COCO-17 and the feet).

The conversion is done once per track, when detection is final (``SubjectTrack.keypoints``); the lift,
fit and write stages read it from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.geometry.skeleton import KEYPOINT_NAMES, MEDIAPIPE_INDEX

_INDEX = np.array(MEDIAPIPE_INDEX)
PRESENT = _INDEX >= 0
"""(K,) keypoints that have a MediaPipe counterpart (MediaPipe reports no small toes)."""


def mediapipe_to_keypoints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Select the fitter's keypoints from MediaPipe's 33 landmarks.

    Args:
        values: (T, 33, C) per-landmark values.
    Returns:
        (T, K, C) float32 values (0 where MediaPipe has no counterpart) and the (K,) ``PRESENT`` mask.
    """
    out = np.zeros(values.shape[:1] + (len(KEYPOINT_NAMES),) + values.shape[2:], dtype=np.float32)
    out[:, PRESENT] = values[:, _INDEX[PRESENT]]
    return out, PRESENT.copy()


@dataclass(frozen=True)
class TrackKeypoints:
    """One track's detections over the fitter's keypoints."""

    image: np.ndarray
    """(T, K, 3) pixels and confidence (0 for keypoints MediaPipe lacks)."""
    world: np.ndarray
    """(T, K, 3) MediaPipe's world landmarks (metres, hip-centred, camera-aligned axes)."""
    present: np.ndarray
    """(K,) bool: the keypoint has a MediaPipe counterpart."""

    @classmethod
    def from_landmarks(cls, body2d: np.ndarray, body_world: np.ndarray) -> TrackKeypoints:
        """From MediaPipe's (T, 33, 3) image and world landmarks."""
        image, present = mediapipe_to_keypoints(body2d)
        world, _ = mediapipe_to_keypoints(body_world)
        return cls(image, world, present)
