"""The one interface every body model offers: canonical pose in, typed output out.

A body model (Anny, or the user's SMPL / SMPL-H / SMPL-X files) is driven by a :class:`CanonicalPose`
(SMPL-X joint order and axes, identity = T-pose; ``geometry/skeleton.py``) and a shape, and returns a
:class:`BodyOutput`: keypoints (``KEYPOINT_NAMES``), the skinning transforms and, on request, the
vertices, all in the camera frame. The fit, the pipeline and the preview use only this interface
(:class:`BodyModel`); ``factory.build_body`` builds any of them.

The chain behind :meth:`BodyBase.forward` is: canonical pose -> the model's native delta transforms
(``native_deltas``) -> skinning transforms (``bone_transforms``) -> keypoints and vertices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import roma
import torch
from torch import nn

from backend.io.atomic import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CanonicalPose:
    """A clip's pose in canonical form, T frames of rotation matrices (camera frame for the root)."""

    global_orient: torch.Tensor
    """(T, 3, 3) rotation from canonical model axes to the camera frame."""
    body_pose: torch.Tensor
    """(T, 21, 3, 3) local rotations of the 21 body joints (SMPL-X order and axes)."""
    transl: torch.Tensor
    """(T, 3) pelvis (root joint) position in the camera frame, metres."""
    left_hand: torch.Tensor | None = None
    """(T, 15, 3, 3) finger rotations (SMPL-X hand order), or None: the model's rest hand."""
    right_hand: torch.Tensor | None = None
    jaw: torch.Tensor | None = None
    """(T, 3, 3) jaw rotation (SMPL-X), or None."""
    expression: torch.Tensor | None = None
    """(T, E) expression coefficients (SMPL-X), or None."""

    @property
    def frames(self) -> int:
        return int(self.body_pose.shape[0])

    def select(self, index: torch.Tensor | slice) -> CanonicalPose:
        """The same pose for some frames only (``index`` into the first axis)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return CanonicalPose(**{k: None if v is None else v[index] for k, v in values.items()})

    @classmethod
    def rest(cls, frames: int = 1, device: torch.device | str = "cpu") -> CanonicalPose:
        """The T-pose with identity orientation at the origin."""
        eye = torch.eye(3, device=device)
        return cls(
            eye.repeat(frames, 1, 1), eye.repeat(frames, 21, 1, 1), torch.zeros(frames, 3, device=device)
        )


@dataclass(frozen=True)
class BodyOutput:
    """What a body model computes for a pose (camera frame, metres)."""

    keypoints: torch.Tensor
    """(T, K, 3) ``KEYPOINT_NAMES``."""
    transforms: torch.Tensor
    """(T, B, 4, 4) skinning transforms of the model's bones (posed from rest)."""
    deltas: torch.Tensor
    """(T, B, 4, 4) the model's native local delta transforms (what its rig animates)."""
    vertices: torch.Tensor | None = None
    """(T, V, 3) skinned vertices, when asked for."""


class BodyModel(Protocol):
    """What the fit, the pipeline and the preview need from a body model."""

    name: str
    """``anny``, ``smpl``, ``smplh`` or ``smplx``."""
    faces: torch.Tensor
    """(F, 3) triangles."""
    shape_size: int
    """Number of shape parameters (Anny's phenotypes, or betas)."""
    default_collision: str
    """The self-collision mode ``auto`` means for this model (``off`` or ``on``)."""
    has_hands: bool
    has_face: bool
    num_expression: int

    def shape_from_params(self, params: torch.Tensor) -> torch.Tensor:
        """The model's shape (S,) from the fit's unconstrained parameters (S,) (0 = average body)."""

    def rest_state(self, shape: torch.Tensor) -> Any:
        """Shape-dependent quantities for a shape (S,); pass them to the posing methods."""

    def native_deltas(self, pose: CanonicalPose) -> torch.Tensor:
        """(T, B, 4, 4) native local delta transforms."""

    def bone_transforms(self, deltas: torch.Tensor, rest: Any) -> torch.Tensor:
        """(T, B, 4, 4) skinning transforms from delta transforms."""

    def keypoints(self, transforms: torch.Tensor, rest: Any) -> torch.Tensor:
        """(T, K, 3) keypoints from skinning transforms."""

    def hand_keypoints(self, transforms: torch.Tensor, rest: Any) -> torch.Tensor:
        """(T, 2, 21, 3) MediaPipe's hand landmarks, left then right (models with ``has_hands``)."""

    def keypoints_with_hands(self, pose: CanonicalPose, rest: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, K, 3) keypoints and (T, 2, 21, 3) hand landmarks of a pose with hands (``has_hands``)."""

    def keypoints_fast(self, pose: CanonicalPose, rest: Any) -> torch.Tensor:
        """(T, K, 3) keypoints straight from the body pose (the fit's inner loop; no hands, no face)."""

    def vertices(
        self, transforms: torch.Tensor, rest: Any, expression: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(T, V, 3) skinned vertices."""

    def vertices_at(self, transforms: torch.Tensor, rest: Any, vids: torch.Tensor) -> torch.Tensor:
        """(T, N, 3) skinned vertices ``vids`` only."""

    def forward(self, pose: CanonicalPose, rest: Any, vertices: bool = False) -> BodyOutput:
        """Keypoints and transforms (and vertices) of a pose."""

    def native_pose_rotvec(self, deltas: torch.Tensor) -> np.ndarray:
        """(T, B, 3) the native delta rotations as axis-angle (what the motion file stores)."""

    def rig_arrays(self, shape: np.ndarray) -> dict[str, np.ndarray]:
        """The Blender rig for a fitted shape (``video2anim.rig``, stored in the motion file)."""

    def motion_arrays(
        self,
        shape: np.ndarray,
        global_orient: np.ndarray,
        native_pose: np.ndarray,
        parts: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """The model's own arrays of one person in the motion file (shape, native pose, hands, jaw, ...)
        from the fitted shape (S,), global orientation (T, 3), native pose (T, B, 3) and fitted parts."""

    def meta(self) -> dict[str, Any]:
        """``meta.body_model`` of the motion file."""


class BodyBase(nn.Module):
    """The parts of :class:`BodyModel` every adapter shares."""

    def forward(self, pose: CanonicalPose, rest: Any, vertices: bool = False) -> BodyOutput:
        deltas = self.native_deltas(pose)
        transforms = self.bone_transforms(deltas, rest)
        verts = self.vertices(transforms, rest, pose.expression) if vertices else None
        return BodyOutput(self.keypoints(transforms, rest), transforms, deltas, verts)

    def keypoints_with_hands(self, pose: CanonicalPose, rest: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (T, K, 3) and hand landmarks (T, 2, 21, 3) of a pose with hands (models that have
        hands; a model may compute them faster than through all its bones)."""
        out = self.forward(pose, rest)
        return out.keypoints, self.hand_keypoints(out.transforms, rest)  # type: ignore[attr-defined]

    @staticmethod
    def native_pose_rotvec(deltas: torch.Tensor) -> np.ndarray:
        """Native per-bone delta rotations (T, B, 3) as axis-angle."""
        return roma.rotmat_to_rotvec(deltas[:, :, :3, :3]).detach().cpu().numpy()


def export_rig(body: BodyModel, shape: np.ndarray, path: str | Path) -> Path:
    """Write the Blender rig of ``body`` with a fitted shape (S,) to an ``.npz`` file atomically."""
    path = Path(path)
    arrays = body.rig_arrays(np.asarray(shape))
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    log.info("wrote the %s rig (%d bones, %d vertices) to %s", body.name, len(arrays["bone_labels"]),
             len(arrays["rest_vertices"]), path)  # fmt: skip
    return path
