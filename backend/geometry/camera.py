"""Pinhole camera in the OpenCV frame (x right, y down, z forward), metres and pixels."""

from __future__ import annotations

import torch


def project(points: torch.Tensor, intrinsics: torch.Tensor, min_depth: float = 0.05) -> torch.Tensor:
    """Project camera-frame points (..., 3) to pixels (..., 2) with a (3, 3) camera matrix.

    Depth is clamped to ``min_depth`` so that points behind the camera give finite values.
    """
    z = points[..., 2:3].clamp(min=min_depth)
    xy = points[..., :2] / z
    focal = torch.stack([intrinsics[0, 0], intrinsics[1, 1]])
    centre = intrinsics[:2, 2]
    return xy * focal + centre
