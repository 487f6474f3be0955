"""Initial global orientation and translation per frame, in closed form.

Orientation: Kabsch alignment of the model's rest torso (shoulders, hips) to the lifted 3D
torso. Translation: linear least squares of the pinhole equations for the rotated rest
keypoints. Frames without evidence take the nearest valid frame's values, then everything is
lightly smoothed over time.
"""

from __future__ import annotations

import numpy as np

from backend.geometry.linalg import kabsch
from backend.geometry.skeleton import KEYPOINT_NAMES

_TORSO = [KEYPOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
_RIGID = [
    KEYPOINT_NAMES.index(n)
    for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_ear", "right_ear", "nose")
]
# Camera from canonical model axes for a person standing upright and facing the camera.
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])




def _fill_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Copy the nearest valid frame's values into invalid frames (T, ...)."""
    if valid.all() or not valid.any():
        return values
    good = np.nonzero(valid)[0]
    pos = np.clip(np.searchsorted(good, np.arange(len(valid))), 1, len(good) - 1) if len(good) > 1 else None
    if pos is None:
        return values[np.full(len(valid), good[0])]
    idx = np.arange(len(valid))
    left, right = good[pos - 1], good[pos]
    nearest = np.where(np.abs(idx - left) <= np.abs(right - idx), left, right)
    nearest = np.where(idx <= good[0], good[0], np.where(idx >= good[-1], good[-1], nearest))
    return values[nearest]


def initial_orientation(
    rest_kp: np.ndarray, lifted: np.ndarray, conf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame camera-from-model rotations.

    Args:
        rest_kp: (K, 3) model keypoints in canonical axes at the zero pose.
        lifted: (T, K, 3) root-relative lifted keypoints, camera-aligned axes.
        conf: (T, K) confidences.
    Returns:
        (T, 3, 3) rotations and (T,) bool mask of frames that had enough torso evidence.
    """
    ok = (conf[:, _TORSO] > 0.1).sum(1) >= 3
    rots = kabsch(rest_kp[_TORSO], lifted[:, _TORSO], conf[:, _TORSO] + 1e-3)
    rots[~ok] = FACING_CAMERA
    return _fill_invalid(rots, ok), ok


def initial_translation(
    rest_kp: np.ndarray, rotations: np.ndarray, kp2d: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray
) -> np.ndarray:
    """Per-frame pelvis positions (T, 3) solving the linearised pinhole equations, batched.

    For each frame: f (X + tx) - du (Z + tz) = 0 and f (Y + ty) - dv (Z + tz) = 0 for the
    rotated rest keypoints X, Y, Z, with du, dv the detections relative to the principal point.

    Args:
        rest_kp: (K, 3) zero-pose keypoints relative to the pelvis, canonical axes.
        rotations: (T, 3, 3) camera-from-model rotations.
        kp2d: (T, K, 2) detections in pixels; conf: (T, K).
        intrinsics: (3, 3) camera matrix.
    """
    f = float(intrinsics[0, 0])
    cx, cy = float(intrinsics[0, 2]), float(intrinsics[1, 2])
    t = kp2d.shape[0]
    n = len(_RIGID)
    x = np.einsum("tij,nj->tni", rotations, rest_kp[_RIGID])  # (T, N, 3)
    du = kp2d[:, _RIGID, 0] - cx
    dv = kp2d[:, _RIGID, 1] - cy
    w = conf[:, _RIGID]
    a = np.zeros((t, 2 * n, 3))
    a[:, :n, 0] = f
    a[:, :n, 2] = -du
    a[:, n:, 1] = f
    a[:, n:, 2] = -dv
    b = np.concatenate([du * x[..., 2] - f * x[..., 0], dv * x[..., 2] - f * x[..., 1]], axis=1)
    ww = np.concatenate([w, w], axis=1)
    ata = np.einsum("tki,tk,tkj->tij", a, ww, a) + 1e-6 * np.eye(3)
    atb = np.einsum("tki,tk,tk->ti", a, ww, b)
    sol = np.linalg.solve(ata, atb[..., None])[..., 0]
    ok = ((w > 0.1).sum(1) >= 3) & (sol[:, 2] > 0.3)
    if not ok.any():
        return np.tile([0.0, 0.0, 4.0], (t, 1))
    out = _fill_invalid(sol, ok)
    # Light temporal smoothing: a 5-frame moving median is robust to outliers.
    padded = np.pad(out, ((2, 2), (0, 0)), mode="edge")
    windows = np.stack([padded[k : k + t] for k in range(5)], axis=0)
    return np.median(windows, axis=0)

