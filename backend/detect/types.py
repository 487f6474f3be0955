"""Typed outputs of the detect and track stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.detect.keypoints import TrackKeypoints

# MediaPipe Pose's 33 landmark names, in its order (person's left/right).
MP_BODY_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
N_BODY = 33
N_HAND = 21
N_FACE = 468


@dataclass
class SubjectTrack:
    """Per-frame detections of one tracked person over the processed frame range.

    T is the number of decoded frames; frames where the person was not found have
    ``valid == False`` and zero confidences (never dropped).
    """

    track_id: int
    frame_index: np.ndarray
    """(T,) int64 source frame numbers."""
    time_s: np.ndarray
    """(T,) float64 presentation times."""
    valid: np.ndarray
    """(T,) bool: the person was detected in this frame."""
    body2d: np.ndarray
    """(T, 33, 3) float32: MediaPipe Pose landmarks, x and y in pixels, confidence in [0, 1]."""
    body_world: np.ndarray
    """(T, 33, 3) float32: MediaPipe world landmarks, metres, origin between the hips,
    camera-aligned axes (x right, y down, z away from the camera)."""
    left_hand2d: np.ndarray
    """(T, 21, 3) float32: hand landmarks in pixels with confidence (0 where missing)."""
    right_hand2d: np.ndarray
    face2d: np.ndarray
    """(T, 468, 3) float32: face mesh landmarks in pixels with confidence (0 where missing)."""
    bbox: np.ndarray
    """(T, 4) float32: x0, y0, x1, y1 of the person in pixels (zeros where invalid)."""
    silhouette: np.ndarray
    """(T, S, S) uint8: segmentation mask (0..255) resampled to S x S inside ``bbox``."""
    keypoints: TrackKeypoints | None = None
    """``body2d`` and ``body_world`` over the fitter's keypoints; set by detect once they are final."""

    def body_keypoints(self) -> TrackKeypoints:
        """The carried keypoints (converted here, once, for a track built by hand)."""
        if self.keypoints is None:
            self.keypoints = TrackKeypoints.from_landmarks(self.body2d, self.body_world)
        return self.keypoints


@dataclass
class DetectionResult:
    """The tracked subject(s) and what the tracker decided."""

    subjects: list[SubjectTrack]
    n_tracks: int
    """How many distinct people were tracked over the clip."""
    warnings: list[str]
    fps: float
    """Detection throughput, frames per second."""
    people: list[dict[str, object]] = field(default_factory=list)
    """Every tracked person (``people_list.TrackedPerson.as_meta``), for the motion file's meta."""
    thumbnails: np.ndarray | None = None
    """(N, 64, 64, 3) uint8: a crop of each listed person, in ``people``'s order."""
