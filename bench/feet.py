"""Foot metrics of a motion against ground truth, in world space (z up, floor at z = 0; metres in, mm out).

The four foot points are the heel and big-toe keypoints of each foot. Ground-truth contact: a point
is within ``CONTACT_HEIGHT_M`` of its lowest height in the clip and moves less than ``STILL_M`` per
frame. Then, per clip:

- skating: mean horizontal speed (mm/frame) of the predicted point over pairs of frames in which the
  ground truth says it is in contact (``truth_skating_mm``: the same of the ground truth itself, whose
  planted feet creep a little);
- penetration: mean over points and frames of how far a predicted foot point sits below the predicted
  floor (mm; the keypoints lie above the soles, so below the floor is through it);
- floating: mean height (mm) of a predicted foot point above the true one while the truth has it in
  contact (a foot hovering when it should stand);
- root trajectory error: mean distance (mm) of the predicted pelvis path from the true one in world
  space, after one rigid alignment (rotation about the vertical and translation) for the whole clip.
"""

from __future__ import annotations

import numpy as np

from backend.geometry.frames import FOOT_POINTS
from backend.geometry.linalg import kabsch
from backend.geometry.skeleton import KEYPOINT_NAMES

HIPS = (KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip"))
CONTACT_HEIGHT_M = 0.03
STILL_M = 0.01
"""The rendered clips' mocap, retargeted onto Anny, lets planted feet creep by about 5 mm per frame."""


def truth_contacts(world: np.ndarray) -> np.ndarray:
    """(T, 4) bool ground-truth contacts of the foot points of world keypoints (T, K, 3)."""
    feet = world[:, list(FOOT_POINTS)]
    low = feet[..., 2] < feet[..., 2].min(0, keepdims=True) + CONTACT_HEIGHT_M
    speed = np.zeros(feet.shape[:2])  # the larger of the steps into and out of each frame
    if len(feet) > 1:
        step = np.linalg.norm(np.diff(feet, axis=0), axis=-1)
        speed[1:] = step
        speed[:-1] = np.maximum(speed[:-1], step)
    return low & (speed < STILL_M)


def skating_mm(pred_world: np.ndarray, contact: np.ndarray, frames: np.ndarray) -> float | None:
    """Mean horizontal speed (mm/frame) of predicted foot points (T, K, 3) over consecutive ``frames``
    (T,) that are both in ground-truth ``contact`` (T, 4)."""
    feet = pred_world[:, list(FOOT_POINTS), :2]
    both = contact[1:] & contact[:-1] & (frames[1:] & frames[:-1])[:, None]
    if not both.any():
        return None
    return float(np.linalg.norm(np.diff(feet, axis=0), axis=-1)[both].mean() * 1000.0)


def vertical_mm(pred_world: np.ndarray, true_world: np.ndarray, contact: np.ndarray, frames: np.ndarray) -> tuple[float, float | None]:
    """(penetration, floating) in mm: how far predicted foot points go below the predicted floor (z = 0;
    a keypoint sits above the sole, so below the floor is inside it), per point and frame; and how far a
    point stands above where the truth has it, over the truth's contacts."""
    pred = pred_world[:, list(FOOT_POINTS), 2][frames]
    true = true_world[:, list(FOOT_POINTS), 2][frames]
    standing = contact[frames]
    floating = float(np.clip(pred - true, 0, None)[standing].mean() * 1000.0) if standing.any() else None
    return float(np.clip(-pred, 0, None).mean() * 1000.0), floating


def root_path_mm(pred_world: np.ndarray, true_world: np.ndarray, frames: np.ndarray) -> float:
    """Mean pelvis distance (mm) after one rotation about z and translation for the clip."""
    p = pred_world[:, list(HIPS)].mean(1)[frames]
    t = true_world[:, list(HIPS)].mean(1)[frames]
    rot2 = kabsch(np.pad(p[:, :2], ((0, 0), (0, 1))), np.pad(t[:, :2], ((0, 0), (0, 1))))
    aligned = (p - p.mean(0)) @ rot2.T + t.mean(0)
    aligned[:, 2] = p[:, 2] - p[:, 2].mean() + t[:, 2].mean()
    return float(np.linalg.norm(aligned - t, axis=-1).mean() * 1000.0)


def foot_metrics(pred_world: np.ndarray, true_world: np.ndarray, frames: np.ndarray) -> dict[str, float | None]:
    """Every foot metric of one clip (see the module doc); world keypoints (T, K, 3), frames (T,) bool."""
    contact = truth_contacts(true_world)
    penetration, floating = vertical_mm(pred_world, true_world, contact, frames)
    return {
        "skating_mm": skating_mm(pred_world, contact, frames),
        "truth_skating_mm": skating_mm(true_world, contact, frames),
        "penetration_mm": penetration,
        "floating_mm": floating,
        "root_path_mm": root_path_mm(pred_world, true_world, frames),
        "contact_share": float(contact[frames].any(1).mean()) if frames.any() else 0.0,
    }
