"""The fit's mesh self-collision term, SMPLify-X style, for any body model.

Colliding triangle pairs between body parts that share no joint (``mesh_parts``) are found on the
posed meshes through warp's BVH (no gradients), then each intruding vertex is penalised by the
receiving triangle's cone distance field (``collision.mesh_collision_penalty``). Only the vertices of
colliding triangles, in the frames that collide, are skinned with gradients, so one evaluation
costs little more than the keypoints. The search runs every ``search_every`` evaluations: over all
frames the first time, then over the frames that have collided at any search (the term only moves
those, and the other terms may pull a limb back in once its pairs are gone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from backend.config import CollisionConfig
from backend.fit.collision import mesh_collision_penalty
from backend.fit.mesh_parts import MeshParts, pose_pairs

log = logging.getLogger(__name__)

TransformsFn = Callable[[torch.Tensor], torch.Tensor]
"""Frame indices (n,) -> skinning transforms (n, B, 4, 4) of the current parameters (with gradients)."""


class MeshCollisionTerm:
    """Per-fit state of the mesh term (the pairs of the last search); see the module docstring.

    body: an ``AnnyBody`` or ``SmplxBody`` (``vertices``, ``vertices_at``); rest: its rest state for
    the fitted shape; parts: `MeshParts` of that body; frames: T.
    """

    def __init__(self, body, rest, parts: MeshParts, frames: int, config: CollisionConfig | None = None) -> None:  # noqa: ANN001
        self.body, self.rest, self.parts = body, rest, parts
        self.frames = frames
        self.config = config or CollisionConfig()
        self.evaluations = 0
        self.searches = 0
        self.watched = torch.arange(frames)
        self.colliding = torch.empty(0, dtype=torch.long)
        self.pairs = torch.empty(0, 3, dtype=torch.long)
        self.first_pairs: int | None = None

    @torch.no_grad()
    def search(self, transforms: TransformsFn) -> None:
        """Find the colliding pairs of the watched frames (all on the first call, then those that
        collided at any search)."""
        found = []
        frames = self.watched
        for a in range(0, len(frames), self.config.chunk):
            idx = frames[a : a + self.config.chunk]
            tr = transforms(idx.to(self.rest.rest_vertices.device))
            verts = self.body.vertices(tr, self.rest).detach().float().cpu()
            pairs = pose_pairs(verts, self.parts)
            pairs[:, 0] = idx[pairs[:, 0]]
            found.append(pairs)
        self.pairs = torch.cat(found) if found else torch.empty(0, 3, dtype=torch.long)
        self.colliding = torch.unique(self.pairs[:, 0])
        first = self.first_pairs is None
        self.watched = self.colliding if first else torch.unique(torch.cat([self.watched, self.colliding]))
        if self.first_pairs is None:
            self.first_pairs = len(self.pairs)
        self.searches += 1

    def penalty(self, transforms: TransformsFn) -> torch.Tensor:
        """Mean over the clip's frames of the summed cone-field penalties (metres^2), searching first
        when due. Gradients flow to the parameters behind ``transforms``."""
        if self.evaluations % self.config.search_every == 0:
            self.search(transforms)
        self.evaluations += 1
        device = self.rest.rest_vertices.device
        if self.pairs.numel() == 0:
            return torch.zeros((), device=device)
        frames, frame_local = torch.unique(self.pairs[:, 0], return_inverse=True)
        tri = self.parts.faces[self.pairs[:, 1:]]  # (P, 2, 3)
        vids, local = torch.unique(tri.reshape(-1), return_inverse=True)
        faces_local = local.reshape(-1, 3)  # rows: i of pair 0, j of pair 0, i of pair 1, ...
        pairs_local = torch.stack(
            [frame_local, torch.arange(0, 2 * len(tri), 2), torch.arange(1, 2 * len(tri), 2)], dim=1
        )
        verts = self.body.vertices_at(transforms(frames.to(device)), self.rest, vids.to(device))
        per_frame = mesh_collision_penalty(verts, faces_local.to(device), pairs_local.to(device), self.config.cone)
        return per_frame.sum() / self.frames

    def stats(self) -> dict[str, int]:
        """Pairs found by the first and the last search, searches run, colliding frames at the last."""
        return {"pairs_first": int(self.first_pairs or 0), "pairs_last": len(self.pairs),
                "searches": self.searches, "colliding_frames": len(self.colliding)}  # fmt: skip
