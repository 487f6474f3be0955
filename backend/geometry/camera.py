"""Pinhole camera in the OpenCV frame (x right, y down, z forward), metres and pixels."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", torch.Tensor, np.ndarray)


def project(points: Array, intrinsics: Array, min_depth: float = 0.05) -> Array:
    """Project camera-frame points (..., 3) to pixels (..., 2) with a (3, 3) camera matrix.

    Works on torch tensors (differentiable) and numpy arrays alike. Depth is clamped to
    ``min_depth`` so that points behind the camera give finite values.
    """
    z = points[..., 2:3].clip(min=min_depth)
    xy = points[..., :2] / z
    focal = intrinsics[[0, 1], [0, 1]]
    centre = intrinsics[:2, 2]
    return xy * focal + centre
