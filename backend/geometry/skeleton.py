"""The canonical skeleton: SMPL-X body joint order, names, parents and frame convention.

Canonical rotations are expressed in SMPL-X model axes (x: the body's left, y: up, z: front);
identity local rotations give the T-pose. Every body-model adapter maps to and from it.
"""

from __future__ import annotations

import numpy as np

BODY_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)  # fmt: skip
BODY_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)  # fmt: skip
N_BODY_JOINTS = 22

# Keypoints the fitter uses (COCO-17 plus feet), in this order everywhere.
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_big_toe", "right_big_toe",
    "left_small_toe", "right_small_toe", "left_heel", "right_heel",
)  # fmt: skip

# MediaPipe Pose landmark index for each keypoint above (-1: no MediaPipe counterpart).
MEDIAPIPE_INDEX: tuple[int, ...] = (
    0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28, 31, 32, -1, -1, 29, 30,
)  # fmt: skip

# Rotation taking canonical (SMPL-X) model coordinates to world coordinates of the
# design's world frame (Z up, subject facing -Y): x -> x, y (up) -> z, z (front) -> -y.
WORLD_FROM_CANONICAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
