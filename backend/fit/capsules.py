"""Self-collision term of the fit on any body model: capsules between the fitted keypoints.

The fitter's keypoints (``KEYPOINT_NAMES``, every body model has them) plus two virtual points (neck =
mid-shoulders, pelvis = mid-hips) span 16 segments: torso, head, collar and hip bones, upper and lower
arms and legs, feet. Each gets a capsule whose radius is read off the model's own zero-pose mesh
(:func:`interior_radii`); capsules fewer than ``min_hops`` segments apart never collide, the others
are penalised by their squared overlap (``collision.capsule_penalty``). Batched over frames, a few
hundred segment distances per frame: cheap on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backend.config import CollisionConfig
from backend.fit.collision import capsule_pairs, capsule_penalty
from backend.geometry.skeleton import KEYPOINT_NAMES

_NECK, _PELVIS = "neck", "pelvis"
_POINTS: tuple[str, ...] = (*KEYPOINT_NAMES, _NECK, _PELVIS)
SEGMENTS: tuple[tuple[str, str], ...] = (
    (_PELVIS, _NECK), (_NECK, "nose"), (_NECK, "left_shoulder"), (_NECK, "right_shoulder"),
    (_PELVIS, "left_hip"), (_PELVIS, "right_hip"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_big_toe"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_big_toe"),
)  # fmt: skip
_SHOULDERS = [KEYPOINT_NAMES.index("left_shoulder"), KEYPOINT_NAMES.index("right_shoulder")]
_HIPS = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]


def with_virtual_points(keypoints: torch.Tensor) -> torch.Tensor:
    """Keypoints (..., K, 3) followed by neck and pelvis (mid-shoulders, mid-hips): (..., K + 2, 3)."""
    neck = keypoints[..., _SHOULDERS, :].mean(-2, keepdim=True)
    pelvis = keypoints[..., _HIPS, :].mean(-2, keepdim=True)
    return torch.cat([keypoints, neck, pelvis], dim=-2)


def interior_radii(
    vertices: torch.Tensor, points: torch.Tensor, bones: torch.Tensor, quantile: float = 0.5
) -> torch.Tensor:
    """Capsule radii (B,): per bone, the ``quantile`` of the distances of the vertices (V, 3) nearest to
    it whose foot lies inside the segment (between ``points`` (N, 3) ``bones[:, 0]`` and ``[:, 1]``).

    Unlike ``collision.capsule_radii`` this ignores what lies beyond a segment's ends (the hand past the
    wrist, the skull past the nose), which would otherwise inflate the radius. 0 where no vertex counts.
    """
    p, q = points[bones[:, 0]], points[bones[:, 1]]
    d = q - p
    t = ((vertices[:, None] - p[None]) * d[None]).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)[None]  # (V, B)
    dist = (vertices[:, None] - (p[None] + t.clamp(0, 1)[..., None] * d[None])).norm(dim=-1)
    best, owner = dist.min(dim=1)
    foot = t.gather(1, owner[:, None])[:, 0]
    inside = (foot > 0.05) & (foot < 0.95)
    radii = torch.zeros(bones.shape[0], dtype=vertices.dtype, device=vertices.device)
    for b in range(bones.shape[0]):
        mine = best[(owner == b) & inside]
        if mine.numel():
            radii[b] = torch.quantile(mine, quantile)
    return radii


@dataclass
class KeypointCapsules:
    """Capsules over the keypoint skeleton of one body shape."""

    bones: torch.Tensor
    """(B, 2) point indices into keypoints + (neck, pelvis)."""
    radii: torch.Tensor
    """(B,) capsule radii, metres."""
    pairs: torch.Tensor
    """(P, 2) bone pairs that may collide."""

    @classmethod
    def build(
        cls, rest_keypoints: torch.Tensor, rest_vertices: torch.Tensor, config: CollisionConfig | None = None
    ) -> KeypointCapsules:
        """Capsules from the zero-pose keypoints (K, 3) and mesh (V, 3) of a body, in one frame."""
        config = config or CollisionConfig()
        bones = torch.tensor([(_POINTS.index(a), _POINTS.index(b)) for a, b in SEGMENTS], dtype=torch.long)
        points = with_virtual_points(rest_keypoints.detach())
        radii = interior_radii(
            rest_vertices.detach(), points, bones.to(points.device), config.radius_quantile
        )
        pairs = capsule_pairs(bones, config.min_hops)
        device = rest_keypoints.device
        return cls(bones.to(device), (radii * config.radius_scale).to(device), pairs.to(device))

    def penalty(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Mean over frames of the summed squared capsule overlaps (metres^2) of keypoints (T, K, 3)."""
        return capsule_penalty(with_virtual_points(keypoints), self.bones, self.radii, self.pairs).mean()
