"""Loss terms of the temporal fit: pure functions of tensors, each returning a scalar.

Conventions: T frames, K keypoints, J joints. Confidence weights are (T, K) in [0, 1] and
are zero where a keypoint (or a whole frame) is missing. Every term is normalised so that
its value does not grow with the clip length.
"""

from __future__ import annotations

import roma
import torch


def geman_mcclure(sq_residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure robust penalty of a squared residual: ``s^2 r^2 / (s^2 + r^2)``."""
    s2 = sigma * sigma
    return s2 * sq_residual / (s2 + sq_residual)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of ``weights * values`` over the weights' sum (0 when every weight is 0)."""
    return (values * weights).sum() / weights.sum().clamp(min=1e-6)


def reprojection(
    projected: torch.Tensor, observed: torch.Tensor, confidence: torch.Tensor, sigma: float, scale: float
) -> torch.Tensor:
    """Robust confidence-weighted 2D reprojection term.

    Args:
        projected: (T, K, 2) model keypoints in pixels.
        observed: (T, K, 2) detections in pixels.
        confidence: (T, K) detection confidences (0 = ignore).
        sigma: Geman-McClure scale in normalised pixels.
        scale: pixels per normalised pixel (image height / 1000).
    """
    sq = ((projected - observed) / scale).pow(2).sum(-1)
    return weighted_mean(geman_mcclure(sq, sigma), confidence)


def root_relative(points: torch.Tensor, left_hip: int, right_hip: int) -> torch.Tensor:
    """Points (T, K, 3) relative to the mid-point of the two hip keypoints."""
    root = 0.5 * (points[:, left_hip] + points[:, right_hip])
    return points - root[:, None]


def keypoints3d(
    fitted_rel: torch.Tensor, lifted_rel: torch.Tensor, confidence: torch.Tensor, sigma: float = 0.15
) -> torch.Tensor:
    """Robust term between root-relative fitted (T, K, 3) and lifted (T, K, 3) keypoints, metres."""
    sq = (fitted_rel - lifted_rel).pow(2).sum(-1)
    return weighted_mean(geman_mcclure(sq, sigma), confidence)


@torch.no_grad()
def rotated_onto(fitted_rel: torch.Tensor, lifted_rel: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """The lifted keypoints turned by the one rotation that brings them closest to the fitted ones.

    One rotation R for the whole clip (or window of a long clip; weighted Kabsch about the root) minimises
    ``sum(confidence * |fitted_rel - R lifted_rel|^2)``. It stands for a camera tilt or roll that a lifter
    cannot see in the 2D it is given, so the 3D term then judges the body's pose and not which way the
    camera looked. No gradient flows through R (it is re-solved at every evaluation). Where the weights
    are all zero, the lifted keypoints come back unchanged.

    Args:
        fitted_rel, lifted_rel: (T, K, 3) root-relative keypoints, metres.
        confidence: (T, K) weights.
    Returns:
        (T, K, 3) ``lifted_rel`` rotated by R.
    """
    cov = torch.einsum("tk,tki,tkj->ij", confidence, fitted_rel, lifted_rel)  # (3, 3)
    nearest = roma.special_procrustes(cov)  # the closest proper rotation, never a mirror
    identity = torch.eye(3, dtype=cov.dtype, device=cov.device)
    # (no host sync on a GPU: the no-evidence case is a select, not a branch)
    rotation = torch.where(confidence.sum() > 1e-6, nearest, identity)
    return torch.einsum("ij,tkj->tki", rotation, lifted_rel)


def pose_l2(rotvec: torch.Tensor) -> torch.Tensor:
    """Mean over frames of the squared norm of all joint rotations (T, J, 3)."""
    return rotvec.pow(2).sum(dim=(-1, -2)).mean()


def hinge_limits(
    rotvec: torch.Tensor, joint: torch.Tensor, axis: torch.Tensor, sign: torch.Tensor
) -> torch.Tensor:
    """Penalty on rotation components outside anatomical ranges.

    For each rule i, ``rotvec[:, joint[i], axis[i]] * sign[i]`` must be non-negative; the
    squared violation is summed over rules and averaged over frames.
    Args:
        rotvec: (T, J, 3) canonical local rotations as axis-angle.
        joint, axis: (R,) long indices; sign: (R,) float +1 or -1.
    """
    values = rotvec[:, joint, axis] * sign
    return torch.relu(-values).pow(2).sum(-1).mean()


def second_difference(x: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """Acceleration-like second difference along dim 0, for non-uniform frame times.

    Args:
        x: (T, ...) values per frame.
        dt: (T-1,) frame durations divided by the median frame duration.
    Returns:
        (T-2, ...) ``(v[t+1] - v[t]) / mean(dt)`` with ``v[t] = (x[t+1]-x[t]) / dt[t]``.
    """
    shape = (-1,) + (1,) * (x.dim() - 1)
    velocity = (x[1:] - x[:-1]) / dt.reshape(shape)
    mid = 0.5 * (dt[1:] + dt[:-1])
    return (velocity[1:] - velocity[:-1]) / mid.reshape(shape)


def smoothness(x: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """Mean squared second difference of per-frame values (T, ...); 0 for fewer than 3 frames."""
    if x.shape[0] < 3:
        return x.sum() * 0.0
    acc = second_difference(x, dt)
    return acc.pow(2).flatten(1).sum(-1).mean()


def shape_prior(logits: torch.Tensor) -> torch.Tensor:
    """Squared norm of the shape parameters' logits (0 = the average phenotype)."""
    return logits.pow(2).sum()
