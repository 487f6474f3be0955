"""Anny's fingers for the fit: which bones the 15 finger rotations drive, and MediaPipe's 21 hand
landmarks on Anny's skeleton.

The fit's hand parameters (``CanonicalPose.left_hand`` / ``right_hand``, 15 rotations per hand) follow
SMPL-X's finger order (index, middle, pinky, ring, thumb; three joints each). On Anny each drives one
finger bone's ``local-ref`` delta (identity: Anny's rest hand, fingers gently curved), with the
rotation's axes turned from canonical into Anny's (as the body's). MediaPipe's hand landmarks are
Anny's joints: the wrist, each finger bone's head (thumb CMC, MCP, IP; finger MCP, PIP, DIP), and a
fingertip vertex (the skin point of the last bone farthest along it). Every landmark is linear in the
skinning transforms for a fixed shape, as the body keypoints are: ``sum_b T_b @ coeffs[k, b]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SIDES = (".L", ".R")
"""Left hand, then right hand (the person's own sides; Anny's ``.L`` is at +X)."""
FINGERS_SMPLX_ORDER = (2, 3, 5, 4, 1)
"""Anny's ``finger<n>`` for SMPL-X's index, middle, pinky, ring, thumb."""
FINGERS_MEDIAPIPE_ORDER = (1, 2, 3, 4, 5)
"""Anny's ``finger<n>`` for MediaPipe's thumb, index, middle, ring, pinky."""


def finger_bones(side: str) -> list[str]:
    """The 15 finger bones of one hand (``side`` ``.L`` or ``.R``) in SMPL-X hand order."""
    return [f"finger{f}-{i}{side}" for f in FINGERS_SMPLX_ORDER for i in (1, 2, 3)]


def landmark_bones(side: str) -> list[tuple[str, bool]]:
    """MediaPipe's 21 hand landmarks as (Anny bone, at the tip?): the bone's head, or its fingertip."""
    out = [(f"wrist{side}", False)]
    for f in FINGERS_MEDIAPIPE_ORDER:
        out += [(f"finger{f}-{i}{side}", False) for i in (1, 2, 3)] + [(f"finger{f}-3{side}", True)]
    return out


def fingertip_vertices(
    rest_vertices: torch.Tensor, rest_bone_poses: torch.Tensor, skin_weights: torch.Tensor, labels: list[str]
) -> dict[str, int]:
    """Per distal finger bone (``finger<n>-3.L/R``): the vertex it mostly moves that lies farthest along the
    bone (from its parent's head through its own). ``rest_vertices`` (V, 3), ``rest_bone_poses`` (B, 4, 4),
    ``skin_weights`` (V, B), ``labels`` (B,) Anny's bone names."""
    heads = rest_bone_poses[:, :3, 3]
    out = {}
    for side in SIDES:
        for f in FINGERS_MEDIAPIPE_ORDER:
            bone, parent = labels.index(f"finger{f}-3{side}"), labels.index(f"finger{f}-2{side}")
            direction = heads[bone] - heads[parent]
            moved = torch.nonzero(skin_weights[:, bone] > 0.5).flatten()
            reach = (rest_vertices[moved] - heads[bone]) @ (direction / direction.norm())
            out[labels[bone]] = int(moved[torch.argmax(reach)])
    return out


@dataclass(frozen=True)
class LandmarkIndex:
    """Where the 42 landmarks (left hand, then right) sit, as index tensors (built once per body)."""

    head_rows: torch.Tensor
    """(H,) landmarks at a bone's head, and ``head_bones`` (H,) those bones."""
    head_bones: torch.Tensor
    tip_rows: torch.Tensor
    """(10,) fingertip landmarks, and ``tip_vertices`` (10,) their vertices."""
    tip_vertices: torch.Tensor

    @staticmethod
    def build(labels: list[str], tips: dict[str, int], device: torch.device) -> LandmarkIndex:
        """From Anny's bone names and :func:`fingertip_vertices`."""
        heads, ends = [], []
        for k, (bone, at_tip) in enumerate(b for side in SIDES for b in landmark_bones(side)):
            (ends if at_tip else heads).append((k, tips[bone] if at_tip else labels.index(bone)))
        as_tensor = lambda pairs, i: torch.tensor([p[i] for p in pairs], device=device)  # noqa: E731
        return LandmarkIndex(as_tensor(heads, 0), as_tensor(heads, 1), as_tensor(ends, 0), as_tensor(ends, 1))


def landmark_coefficients(
    rest_vertices: torch.Tensor, rest_bone_poses: torch.Tensor, skin_weights: torch.Tensor, index: LandmarkIndex
) -> torch.Tensor:
    """(42, B, 4) coefficients of both hands' landmarks (left then right, MediaPipe order) for one shape:
    a bone's head moves with the bone itself; a fingertip vertex with its skinning weights.
    ``rest_vertices`` (V, 3) and ``rest_bone_poses`` (B, 4, 4) of that shape, ``skin_weights`` (V, B)."""
    out = rest_vertices.new_zeros(42, rest_bone_poses.shape[0], 4)
    out[index.head_rows, index.head_bones] = rest_bone_poses[index.head_bones, :, 3]
    tips = rest_vertices[index.tip_vertices]
    homo = torch.cat([tips, torch.ones_like(tips[:, :1])], dim=-1)  # (10, 4)
    out[index.tip_rows] = skin_weights[index.tip_vertices][:, :, None] * homo[:, None, :]
    return out
