"""What the fit takes and gives: observations in, fitted parameters out, and the parameters between."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import roma
import torch

from backend.body.model import CanonicalPose
from backend.geometry.skeleton import BODY_JOINTS

RELAXED_SHOULDER_RAD = 1.1
"""The fit starts with the arms lowered by this much from the T-pose (about 63 degrees)."""


@dataclass
class FitInputs:
    """Observations for one subject over T frames (numpy, float)."""

    kp2d: np.ndarray
    """(T, K, 2) detections in pixels."""
    conf2d: np.ndarray
    """(T, K) detection confidences; 0 where missing."""
    lifted: np.ndarray
    """(T, K, 3) root-relative 3D keypoints, camera-aligned axes, metres."""
    conf3d: np.ndarray
    """(T, K)."""
    times: np.ndarray
    """(T,) seconds."""
    intrinsics: np.ndarray
    """(3, 3)."""
    image_height: int
    hand2d: np.ndarray | None = None
    """(T, 2, 21, 3) left then right hand (MediaPipe Hands order): pixels and confidence; SMPL-H/X only."""
    face2d: np.ndarray | None = None
    """(T, 51, 3) SMPL-X's face landmarks (iBUG 17..67): pixels and confidence; SMPL-X only."""
    camera_rotations: np.ndarray | None = None
    """(T, 3, 3) each frame's camera to the first frame's (a panning camera); None: a still camera."""
    valid: np.ndarray | None = None
    """(T,) frames with detections (contacts in the others are bridged); None: all."""


@dataclass
class FitResult:
    global_orient: np.ndarray
    """(T, 3) axis-angle, camera from canonical model axes."""
    body_pose: np.ndarray
    """(T, 21, 3) canonical local rotations, axis-angle."""
    transl: np.ndarray
    """(T, 3) pelvis position in the camera frame, metres."""
    phenotypes: np.ndarray
    """(P,) the body's shape: Anny's phenotypes in [0, 1], or the SMPL family's betas."""
    keypoints3d: np.ndarray
    """(T, K, 3) fitted keypoints in the camera frame."""
    projected: np.ndarray
    """(T, K, 2) fitted keypoints projected to pixels."""
    native_pose: np.ndarray
    """(T, B, 3) the body model's own per-bone rotations, axis-angle."""
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    """SMPL family: ``left_hand_pose``/``right_hand_pose`` (T, 15, 3), ``jaw_pose`` (T, 3), ``expression``
    (T, E), and ``hand_keypoints3d`` (T, 2, 21, 3) / ``face_keypoints3d`` (T, 51, 3) where fitted."""
    ground: tuple[np.ndarray, float] | None = None
    """The fitted ground plane (unit up normal (3,), offset): ``n . x + d = 0`` in the first frame's
    camera frame; None when the contact stage did not run."""
    contacts: np.ndarray | None = None
    """(T, 4) the contact probabilities the fit used (left heel, left toe, right heel, right toe)."""
    shape_logits: np.ndarray | None = None
    """(S,) the fit's unconstrained shape parameters (``phenotypes`` = the body's ``shape_from_params``)."""

    def canonical_pose(
        self, a: int = 0, b: int | None = None, device: torch.device | str = "cpu"
    ) -> CanonicalPose:
        """Frames ``a..b-1`` as a :class:`CanonicalPose` (hands, jaw and expression when fitted)."""

        def rot(values: np.ndarray | None) -> torch.Tensor | None:
            return (
                None if values is None else roma.rotvec_to_rotmat(torch.as_tensor(values[a:b], device=device))
            )

        p = self.parts
        expression = p.get("expression")
        return CanonicalPose(
            rot(self.global_orient), rot(self.body_pose), torch.as_tensor(self.transl[a:b], device=device),
            rot(p.get("left_hand_pose")), rot(p.get("right_hand_pose")), rot(p.get("jaw_pose")),
            None if expression is None or not expression.shape[1] else torch.as_tensor(expression[a:b], device=device),
        )  # fmt: skip


@dataclass(frozen=True)
class Shared:
    """What the windows of one long clip share (``fit/windows.py``): the body's shape and the ground."""

    shape_logits: np.ndarray
    """(S,) the shape parameters (kept when ``schedule.fit_shape`` is False)."""
    ground: tuple[np.ndarray, float] | None
    """The ground plane (unit normal, offset) the contact stage keeps, or None: fit one."""


class FitParams(torch.nn.Module):
    """The body's free parameters: per frame an orientation correction, 21 joint rotations and the
    pelvis position; one shape for the clip (the model's unconstrained shape parameters)."""

    def __init__(self, t: int, n_shape: int, transl0: torch.Tensor) -> None:
        super().__init__()
        self.orient_delta = torch.nn.Parameter(torch.zeros(t, 3))
        pose = torch.zeros(t, 21, 3)
        pose[:, BODY_JOINTS.index("left_shoulder") - 1, 2] = -RELAXED_SHOULDER_RAD
        pose[:, BODY_JOINTS.index("right_shoulder") - 1, 2] = RELAXED_SHOULDER_RAD
        self.body_pose = torch.nn.Parameter(pose)
        self.transl = torch.nn.Parameter(transl0.clone())
        self.shape_logits = torch.nn.Parameter(torch.zeros(n_shape))

    def pose(self, rot0: torch.Tensor) -> CanonicalPose:
        """The body pose (no hands) with the initial orientations ``rot0`` (T, 3, 3) applied."""
        orient = rot0 @ roma.rotvec_to_rotmat(self.orient_delta)
        return CanonicalPose(orient, roma.rotvec_to_rotmat(self.body_pose), self.transl)

    def motion(self) -> list[torch.nn.Parameter]:
        """The per-frame body parameters (everything but the shape)."""
        return [self.orient_delta, self.transl, self.body_pose]
