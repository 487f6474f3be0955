"""The canonical body skeleton used by the mocap loaders: rest pose, bone table and kinematics.

Joint order and parents are `backend.geometry.skeleton.BODY_JOINTS` / `BODY_PARENTS` (SMPL-X body).
Axes are SMPL-X model axes (x: the body's left, y: up, z: front). Identity local rotations give
the T-pose defined by `TEMPLATE_POSITIONS`: legs straight down, feet pointing forward (+z),
spine, neck and head straight up, arms horizontal (left arm along +x, right along -x).

`TEMPLATE_POSITIONS` is a fixed average adult (about 1.71 m tall, pelvis 0.95 m above the
floor) with SMPL-X-like proportions, idealised to be exactly left/right symmetric and axis
aligned. It defines the canonical rest directions; clips carry their own bone table (source
bone lengths, see `retarget.py`) for their joint positions.
"""

from __future__ import annotations

import numpy as np

from backend.geometry.skeleton import BODY_JOINTS, BODY_PARENTS, N_BODY_JOINTS

# (22,3) T-pose joint positions in metres, pelvis at the origin, canonical axes.
TEMPLATE_POSITIONS = np.array(
    [
        [0.0, 0.0, 0.0],  # pelvis
        [0.07, -0.09, 0.0],  # left_hip
        [-0.07, -0.09, 0.0],  # right_hip
        [0.0, 0.11, 0.0],  # spine1
        [0.07, -0.47, 0.0],  # left_knee
        [-0.07, -0.47, 0.0],  # right_knee
        [0.0, 0.245, 0.0],  # spine2
        [0.07, -0.87, 0.0],  # left_ankle
        [-0.07, -0.87, 0.0],  # right_ankle
        [0.0, 0.30, 0.0],  # spine3
        [0.07, -0.93, 0.12],  # left_foot (toe base)
        [-0.07, -0.93, 0.12],  # right_foot
        [0.0, 0.51, 0.0],  # neck
        [0.075, 0.41, 0.0],  # left_collar
        [-0.075, 0.41, 0.0],  # right_collar
        [0.0, 0.575, 0.0],  # head
        [0.165, 0.46, 0.0],  # left_shoulder
        [-0.165, 0.46, 0.0],  # right_shoulder
        [0.425, 0.46, 0.0],  # left_elbow
        [-0.425, 0.46, 0.0],  # right_elbow
        [0.675, 0.46, 0.0],  # left_wrist
        [-0.675, 0.46, 0.0],  # right_wrist
    ]
)
TEMPLATE_OFFSETS = TEMPLATE_POSITIONS - TEMPLATE_POSITIONS[[max(p, 0) for p in BODY_PARENTS]]
TEMPLATE_OFFSETS[0] = 0.0
TEMPLATE_POSITIONS.flags.writeable = False
TEMPLATE_OFFSETS.flags.writeable = False
# Rest direction (canonical frame) from each leaf joint towards a point beyond it: head top,
# middle finger tip, toe tip. Used to relate a source's leaf rotations to the canonical ones.
LEAF_TIPS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("head", (0.0, 1.0, 0.0)),
    ("left_wrist", (1.0, 0.0, 0.0)),
    ("right_wrist", (-1.0, 0.0, 0.0)),
    ("left_foot", (0.0, 0.0, 1.0)),
    ("right_foot", (0.0, 0.0, 1.0)),
)
# Floor to ankle joint plus head joint to skull top, added to the T-pose head-ankle extent to
# estimate stature from a bone table.
STATURE_EXTRA_M = 0.26

# Index of each joint's mirror image (left <-> right).
MIRROR_INDEX: tuple[int, ...] = tuple(
    BODY_JOINTS.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for n in BODY_JOINTS
)
# Reflection across the body's sagittal plane (x -> -x) in canonical axes.
REFLECT_X = np.diag([-1.0, 1.0, 1.0])
REFLECT_X.flags.writeable = False


def canonical_fk(
    rotations: np.ndarray, transl: np.ndarray, offsets: np.ndarray = TEMPLATE_OFFSETS
) -> np.ndarray:
    """Joint positions from canonical local rotations.

    rotations: (T,22,3,3) local rotations (pelvis: global orientation); transl: (T,3) pelvis
    position; offsets: (22,3) bone table (default: the fixed template). Returns (T,22,3).
    """
    n_t = rotations.shape[0]
    glob = np.empty((n_t, N_BODY_JOINTS, 3, 3), dtype=np.float64)
    pos = np.empty((n_t, N_BODY_JOINTS, 3), dtype=np.float64)
    rot = rotations.astype(np.float64)
    for j, p in enumerate(BODY_PARENTS):
        if p < 0:
            glob[:, j] = rot[:, j]
            pos[:, j] = transl
        else:
            glob[:, j] = glob[:, p] @ rot[:, j]
            pos[:, j] = pos[:, p] + glob[:, p] @ offsets[j]
    return pos


def local_from_global(glob: np.ndarray) -> np.ndarray:
    """(T,22,3,3) local rotations from world rotations (world rotations are each parent's times the local one)."""
    loc = np.empty_like(glob)
    for j, p in enumerate(BODY_PARENTS):
        loc[:, j] = glob[:, j] if p < 0 else np.swapaxes(glob[:, p], -1, -2) @ glob[:, j]
    return loc


def stature_estimate(offsets: np.ndarray) -> float:
    """Standing height (m) implied by a (22,3) bone table in the T-pose.

    Head joint height above the lower ankle joint plus `STATURE_EXTRA_M`; the template gives
    about 1.71 m.
    """
    pos = np.zeros((N_BODY_JOINTS, 3))
    for j, p in enumerate(BODY_PARENTS):
        if p >= 0:
            pos[j] = pos[p] + offsets[j]
    head = BODY_JOINTS.index("head")
    ankles = [BODY_JOINTS.index("left_ankle"), BODY_JOINTS.index("right_ankle")]
    return float(pos[head, 1] - pos[ankles, 1].min() + STATURE_EXTRA_M)
