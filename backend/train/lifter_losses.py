"""Losses of lifter training (pure functions): pose, bone lengths, trajectory, back-projection.

Units: 3D in metres, 2D in pixels. Keypoints follow ``skeleton.KEYPOINT_NAMES``.
"""

from __future__ import annotations

import torch

from backend.geometry.skeleton import KEYPOINT_NAMES

_BONE_NAMES = (
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_ankle", "left_heel"), ("right_ankle", "right_heel"), ("left_ankle", "left_big_toe"),
    ("right_ankle", "right_big_toe"),
)  # fmt: skip
BONES = torch.tensor([[KEYPOINT_NAMES.index(a), KEYPOINT_NAMES.index(b)] for a, b in _BONE_NAMES])


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error (same unit as the inputs) over (..., K, 3)."""
    return (pred - target).norm(dim=-1).mean()


def bone_lengths(points: torch.Tensor) -> torch.Tensor:
    """(..., K, 3) -> (..., n_bones) lengths of `BONES`."""
    return (points[..., BONES[:, 0], :] - points[..., BONES[:, 1], :]).norm(dim=-1)


def bone_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute bone-length error over `BONES`, (..., K, 3) inputs."""
    return (bone_lengths(pred) - bone_lengths(target)).abs().mean()


def trajectory_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VideoPose3D's inverse-depth weighted root error: mean of ``|pred - target| / target_z``.

    Args:
        pred, target: (..., 3) root positions in the camera frame, metres (target z > 0).
    Returns:
        Scalar. Far subjects, whose 2D says less about their depth, weigh less.
    """
    return ((pred - target).norm(dim=-1) / target[..., 2].clamp(min=0.1)).mean()


def back_projection_error(
    pose_rel: torch.Tensor,
    root: torch.Tensor,
    xy: torch.Tensor,
    conf: torch.Tensor,
    focal: torch.Tensor,
    image_wh: torch.Tensor,
) -> torch.Tensor:
    """Semi-supervised loss: reproject predicted 3D onto the observed 2D (no 3D labels needed).

    Args:
        pose_rel: (B, T, K, 3) root-relative keypoints; root: (B, T, 1, 3) camera-frame root.
        xy: (B, T, K, 2) observed pixels; conf: (B, T, K) their confidences (0: missing).
        focal: (B,) pixels; image_wh: (B, 2) (principal point at the image centre).
    Returns:
        Scalar: confidence-weighted mean 2D error in units of the image width.
    """
    points = pose_rel + root
    z = points[..., 2:3].clamp(min=0.1)
    f = focal.float().reshape(-1, 1, 1, 1)
    centre = 0.5 * image_wh.float().reshape(-1, 1, 1, 2)
    proj = f * points[..., :2] / z + centre
    err = (proj - xy).norm(dim=-1) / image_wh[:, 0].float().reshape(-1, 1, 1)
    return (conf * err).sum() / conf.sum().clamp(min=1e-6)


def bone_consistency(pred_unlabelled: torch.Tensor, reference_lengths: torch.Tensor) -> torch.Tensor:
    """VideoPose3D's bone-length term for unlabelled batches.

    Args:
        pred_unlabelled: (B, T, K, 3) predicted keypoints; reference_lengths: (n_bones,) mean bone
        lengths of the labelled data.
    Returns:
        Scalar: mean absolute difference between the batch's mean bone lengths and the reference.
    """
    return (bone_lengths(pred_unlabelled).mean(dim=(0, 1)) - reference_lengths).abs().mean()


ROOT_NAMES = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
ROOTS = torch.tensor([KEYPOINT_NAMES.index(name) for name in ROOT_NAMES])


def multi_root_mpjpe(pred: torch.Tensor, target: torch.Tensor, roots: torch.Tensor = ROOTS) -> torch.Tensor:
    """MPJPE of the keypoints relative to each of several root joints, averaged over the roots.

    With one root (the mid-hip), a joint far from it carries every error of the chain between them;
    relative to the shoulders and hips too, a wrist's error counts against the torso it hangs from.

    Args:
        pred, target: (..., K, 3) keypoints; roots: (R,) keypoint indices.
    Returns:
        Scalar, the inputs' unit.
    """
    rel_pred = pred.unsqueeze(-3) - pred[..., roots, :].unsqueeze(-2)
    rel_target = target.unsqueeze(-3) - target[..., roots, :].unsqueeze(-2)
    return (rel_pred - rel_target).norm(dim=-1).mean()
