"""Accuracy metrics of keypoint sequences (pure numpy; units are those of the inputs).

Every function returns per-frame values so that callers choose which frames count; frames to
skip are masked by the caller (or by ``valid`` where the metric spans several frames).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.geometry.camera import project
from backend.geometry.kinematics import MID_HIP, accelerations, interior_valid, root_relative
from backend.geometry.linalg import kabsch

__all__ = ["MID_HIP", "root_relative", "procrustes_align", "pa_mpjpe", "rigid_align", "ra_mpjpe",
           "mpjpe_root_aligned", "accel_error", "project_points", "reprojection_error"]  # fmt: skip


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame similarity transform (rotation, uniform scale, translation) of `pred` onto `gt`.

    Args:
        pred, gt: (T, K, 3) corresponding points.
    Returns:
        (T, K, 3) `pred` aligned to `gt` in the least-squares sense (Umeyama, no reflection).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    cov = np.einsum("tki,tkj->tij", g, p)  # (T, 3, 3), sum over k of g p^T
    u, s, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))
    d = np.ones_like(s)
    d[:, -1] = sign
    rot = u @ (d[:, :, None] * vt)  # (T, 3, 3): g ~ scale * rot @ p
    var_p = (p**2).sum(axis=(1, 2))
    scale = (s * d).sum(1) / np.maximum(var_p, 1e-12)
    return scale[:, None, None] * np.einsum("tij,tkj->tki", rot, p) + mu_g


def rigid_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame rotation and translation (no scale) of ``pred`` (T, K, 3) onto ``gt`` (T, K, 3)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    rot = kabsch(pred - mu_p, gt - mu_g, centre=False)  # (T, 3, 3)
    return np.einsum("tij,tkj->tki", rot, pred - mu_p) + mu_g


def ra_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint error per frame (T,) after :func:`rigid_align`: body size counts."""
    return np.linalg.norm(rigid_align(pred, gt) - np.asarray(gt, np.float64), axis=-1).mean(-1)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Procrustes-aligned mean per-joint position error per frame.

    Args:
        pred, gt: (T, K, 3).
    Returns:
        (T,) mean over K of the distance between the aligned prediction and the ground truth.
    """
    aligned = procrustes_align(pred, gt)
    return np.linalg.norm(aligned - np.asarray(gt, dtype=np.float64), axis=-1).mean(-1)


def mpjpe_root_aligned(pred: np.ndarray, gt: np.ndarray, root: Sequence[int] = MID_HIP) -> np.ndarray:
    """Mean per-joint position error per frame after subtracting each sequence's root point.

    Args:
        pred, gt: (T, K, 3); root: keypoint indices averaged into the root (mid-hip by default).
    Returns:
        (T,) mean over K of ``|(pred - pred_root) - (gt - gt_root)|``.
    """
    diff = root_relative(pred, root) - root_relative(gt, root)
    return np.linalg.norm(diff, axis=-1).mean(-1)


def accel_error(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, root: Sequence[int] = MID_HIP
) -> np.ndarray:
    """Acceleration error of root-relative points per interior frame.

    The acceleration of frame t is the second difference ``x[t+1] - 2 x[t] + x[t-1]`` (units
    per frame^2); the error is the mean over K of ``|acc_pred - acc_gt|``.

    Args:
        pred, gt: (T, K, 3); valid: optional (T,) bool, frames that may be used.
        root: keypoint indices averaged into the root (mid-hip by default).
    Returns:
        (T - 2,) errors for frames 1..T-2; NaN where frames t-1, t, t+1 are not all valid.
    """
    if len(pred) < 3:
        return np.zeros(0)
    err = np.linalg.norm(accelerations(pred, root) - accelerations(gt, root), axis=-1).mean(-1)
    if valid is not None:
        err = np.where(interior_valid(valid), err, np.nan)
    return err


def project_points(points: np.ndarray, intrinsics: np.ndarray, min_depth: float = 1e-3) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) with a (3, 3) matrix to pixels (..., 2)."""
    return project(np.asarray(points, np.float64), np.asarray(intrinsics, np.float64), min_depth)


def reprojection_error(pred_2d: np.ndarray, gt_2d: np.ndarray) -> np.ndarray:
    """Mean 2D distance per frame.

    Args:
        pred_2d, gt_2d: (T, K, 2) pixels.
    Returns:
        (T,) mean over K of the pixel distance.
    """
    diff = np.asarray(pred_2d, dtype=np.float64) - np.asarray(gt_2d, dtype=np.float64)
    return np.linalg.norm(diff, axis=-1).mean(-1)
