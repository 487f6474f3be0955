"""Every conversion between the camera frame (OpenCV) and the world frame (Z up, ground z=0,
subject starting to face -Y), in one place.
"""

from __future__ import annotations

import numpy as np

from backend.geometry.linalg import unit as _unit
from backend.geometry.skeleton import KEYPOINT_NAMES

FOOT_POINTS = tuple(KEYPOINT_NAMES.index(n) for n in ("left_heel", "left_big_toe", "right_heel", "right_big_toe"))
"""Keypoint indices of the heel and big toe of each foot, in the motion file's ``contacts`` order."""
_HIPS = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
_SHOULDERS = [KEYPOINT_NAMES.index("left_shoulder"), KEYPOINT_NAMES.index("right_shoulder")]
_ANKLES = [KEYPOINT_NAMES.index("left_ankle"), KEYPOINT_NAMES.index("right_ankle")]
UPRIGHT_POWER = 8
"""How strongly :func:`torso_up` prefers frames where the torso stands straight over the legs."""


def torso_up(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(3,) the body's up direction from keypoints (T, K, 3) over ``valid`` (T,) frames: the mean of the
    hips-to-shoulders and ankles-to-hips directions, weighted towards frames where the two agree (the
    person stands upright; a bend or a squat tilts the torso, not gravity)."""
    kp = keypoints[valid] if valid.any() else keypoints
    hips = kp[:, _HIPS].mean(1)
    torso = _unit(kp[:, _SHOULDERS].mean(1) - hips)
    legs = _unit(hips - kp[:, _ANKLES].mean(1))
    straight = np.clip(np.sum(torso * legs, axis=-1), 0.0, 1.0) ** UPRIGHT_POWER + 1e-6
    return _unit((straight[:, None] * (torso + legs)).sum(0))


def estimate_world_from_camera(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A (4, 4) rigid transform from camera to world coordinates for one subject, still camera, no
    fitted ground: :func:`world_from_ground` on :func:`ground_from_keypoints`.

    Args:
        keypoints: (T, K, 3) fitted keypoints in the camera frame.
        valid: (T,) frames to use.
    """
    return world_from_ground(keypoints, valid, *ground_from_keypoints(keypoints, valid))


def ground_from_keypoints(
    keypoints: np.ndarray, valid: np.ndarray, rotations: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """(up normal (3,), offset) of a ground level with the body's up (:func:`torso_up`), under the
    lowest 5 % of the foot keypoints (T, K, 3) (first frame's camera frame, through ``rotations``)."""
    static = keypoints if rotations is None else np.einsum("tij,tkj->tki", rotations, keypoints)
    up = torso_up(static, valid)
    kp = static[valid] if valid.any() else static
    return up, -float(np.percentile((kp[:, list(FOOT_POINTS)] @ up).ravel(), 5))


def world_from_ground(
    keypoints: np.ndarray, valid: np.ndarray, normal: np.ndarray, offset: float, rotations: np.ndarray | None = None
) -> np.ndarray:
    """Camera-to-world transforms for a fitted ground plane: (4, 4), or (T, 4, 4) for a moving camera.

    World: z along the plane's up ``normal``, the plane ``normal . x + offset = 0`` (first frame's
    camera frame) at z = 0, origin under the pelvis of the first valid frame, which faces -Y.

    Args:
        keypoints: (T, K, 3) fitted keypoints, each frame in its own camera frame.
        valid: (T,) frames to use.
        rotations: (T, 3, 3) each frame's camera to the first frame's; None: a still camera.
    """
    static = keypoints if rotations is None else np.einsum("tij,tkj->tki", rotations, keypoints)
    first = static[int(np.argmax(valid))] if valid.any() else static[0]
    up = _unit(np.asarray(normal, np.float64))
    left = first[KEYPOINT_NAMES.index("left_hip")] - first[KEYPOINT_NAMES.index("right_hip")]
    left = _unit(left - up * float(left @ up))
    forward = _unit(np.cross(left, up))
    rot = np.stack([np.cross(-forward, up), -forward, up])  # rows: world axes in camera coordinates
    pelvis = first[_HIPS].mean(0)
    origin = pelvis - up * (float(pelvis @ up) + offset)
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = -rot @ origin
    if rotations is None:
        return out
    per_frame = np.repeat(np.eye(4)[None], len(rotations), axis=0)
    per_frame[:, :3, :3] = rotations
    return out @ per_frame


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) rigid transform to points (..., 3), or per frame (T, 4, 4) to points (T, ..., 3)."""
    if transform.ndim == 3:
        flat = points.reshape(len(points), -1, 3)
        out = np.einsum("tij,tkj->tki", transform[:, :3, :3], flat) + transform[:, None, :3, 3]
        return out.reshape(points.shape)
    return points @ transform[:3, :3].T + transform[:3, 3]


def foot_contacts(
    world_kp: np.ndarray, times: np.ndarray, height_m: float = 0.06, speed_mps: float = 0.6
) -> np.ndarray:
    """Contact probabilities (T, 4) for left heel, left toe, right heel, right toe.

    A point is in contact when it is near the ground and slow; the probability falls off
    smoothly (logistic) with height and speed.

    Args:
        world_kp: (T, K, 3) keypoints in the world frame (z up, ground at 0).
        times: (T,) seconds.
    """
    feet = world_kp[:, list(FOOT_POINTS)]  # (T, 4, 3)
    t = feet.shape[0]
    if t > 1:
        dt = np.maximum(np.gradient(times), 1e-3)[:, None]
        speed = np.linalg.norm(np.gradient(feet, axis=0), axis=-1) / dt
    else:
        speed = np.zeros((t, 4))
    height = feet[..., 2]
    p_h = 1.0 / (1.0 + np.exp((height - height_m) / (0.25 * height_m)))
    p_v = 1.0 / (1.0 + np.exp((speed - speed_mps) / (0.25 * speed_mps)))
    return (p_h * p_v).astype(np.float32)
