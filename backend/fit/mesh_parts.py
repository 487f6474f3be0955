"""Body-part labels of a body mesh, for self-collision: which triangle pairs may collide at all.

Every skin vertex gets the nearest of the 16 keypoint segments of ``capsules.SEGMENTS`` (the forearm
part holds the hand); the torso is split into a lower and an upper half (17 parts, `PART_NAMES`).
Parts that share a keypoint are *adjacent* and their contact never counts (the folds at a joint).
As in SMPLify-X's part filter (which ignores the upper arms against spine2/spine3, and whose pelvis
part neighbours the thighs), the upper arms are also adjacent to the upper torso (armpits) and the
thighs to the lower torso (hip folds). Triangles that already intersect at rest (Anny's eyes, teeth
and tongue: about 1,100 pairs) are listed so that only pose-caused collisions count.
Shared by the fit's mesh collision term (``mesh_term``) and the collision bench.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend.body.model import BodyModel, CanonicalPose
from backend.fit.capsules import _POINTS, SEGMENTS, with_virtual_points
from backend.fit.collision_mesh import drop_pairs, find_colliding_pairs

__all__ = [
    "PART_NAMES",
    "MeshParts",
    "body_part_adjacency",
    "body_mesh_parts",
    "candidate_faces",
    "main_component",
    "mesh_parts",
    "nearest_segment",
    "pose_pairs",
    "segment_adjacency",
]


_TORSO = SEGMENTS.index(("pelvis", "neck"))
UPPER_TORSO = len(SEGMENTS)
"""Label of the upper torso half (the torso segment's own label keeps the lower half)."""
PART_NAMES: tuple[str, ...] = (
    *("lower torso" if i == _TORSO else f"{a}-{b}" for i, (a, b) in enumerate(SEGMENTS)),
    "upper torso",
)


@dataclass(frozen=True)
class MeshParts:
    """What collision tests need to know about a mesh, whatever its pose.

    faces: (F, 3) long; vertex_part: (V,) long part labels, -1 for vertices never tested;
    face_part: (F,) long, the majority label of its corners (-1 if any corner is -1);
    adjacent: (S, S) bool, True for part pairs whose contact is not counted (a part with itself and
    with the parts it shares a joint with); edges: (E, 2) long, both directions;
    rest_pairs: (R, 2) long triangle pairs that intersect at rest.
    """

    faces: torch.Tensor
    vertex_part: torch.Tensor
    face_part: torch.Tensor
    adjacent: torch.Tensor
    edges: torch.Tensor
    rest_pairs: torch.Tensor

    def ignore_groups(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(F,) group per face and (S+1, S+1) bool ignore matrix for ``find_colliding_pairs``:
        untested faces (part -1) form group S, which is ignored against everything."""
        s = self.adjacent.shape[0]
        groups = torch.where(self.face_part < 0, torch.full_like(self.face_part, s), self.face_part)
        ignore = torch.ones(s + 1, s + 1, dtype=torch.bool)
        ignore[:s, :s] = self.adjacent
        return groups, ignore


def mesh_parts(
    faces: torch.Tensor, part: torch.Tensor, adjacent: torch.Tensor, rest: list[torch.Tensor]
) -> MeshParts:
    """`MeshParts` of a mesh; part: (V,) labels; rest: (V, 3) poses whose intersections don't count."""
    faces = faces.long()
    corner = part[faces]
    face_part = torch.where((corner < 0).any(1), torch.full_like(corner[:, 0], -1), corner.mode(dim=1).values)
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = torch.unique(torch.cat([e, e.flip(1)]), dim=0)
    rest_pairs = torch.cat(
        [find_colliding_pairs(v, faces)[:, 1:] for v in rest] or [torch.empty(0, 2).long()]
    )
    return MeshParts(faces, part.long(), face_part, adjacent.bool(), edges, rest_pairs)


def candidate_faces(vertices: torch.Tensor, parts: MeshParts) -> torch.Tensor:
    """(F,) bool: triangles of the parts whose bounding box overlaps that of a non-adjacent part, in
    one mesh (V, 3). Only these can be in a counted collision (exact, not a heuristic)."""
    s = parts.adjacent.shape[0]
    tested = parts.vertex_part >= 0
    label = parts.vertex_part[tested][:, None].expand(-1, 3)
    v = vertices[tested]
    lo = v.new_full((s, 3), float("inf")).scatter_reduce(0, label, v, "amin")
    hi = v.new_full((s, 3), float("-inf")).scatter_reduce(0, label, v, "amax")
    overlap = ((lo[:, None] <= hi[None]) & (hi[:, None] >= lo[None])).all(-1) & ~parts.adjacent
    active = overlap.any(dim=1)
    return (parts.face_part >= 0) & active[parts.face_part.clamp_min(0)]


def pose_pairs(vertices: torch.Tensor, parts: MeshParts) -> torch.Tensor:
    """Pose-caused colliding pairs (P, 3) (frame, triangle i, triangle j) of meshes (T, V, 3):
    rest pairs dropped, only between tested parts that are not `MeshParts.adjacent`. Each frame
    searches only its `candidate_faces` (none: no search)."""
    groups, ignore = parts.ignore_groups()
    verts = vertices.detach()
    found = []
    for t in range(verts.shape[0]):
        sel = torch.nonzero(candidate_faces(verts[t], parts))[:, 0]
        if len(sel) == 0:
            continue
        pairs = find_colliding_pairs(verts[t], parts.faces[sel], groups[sel], ignore)
        pairs[:, 0] = t
        pairs[:, 1:] = sel[pairs[:, 1:]]
        found.append(pairs)
    if not found:
        return torch.empty(0, 3, dtype=torch.long)
    return drop_pairs(torch.cat(found), parts.rest_pairs, len(parts.faces))


def segment_adjacency() -> torch.Tensor:
    """(S, S) bool over `capsules.SEGMENTS`: True where two segments are the same or share a point."""
    seg = [set(s) for s in SEGMENTS]
    return torch.tensor([[bool(a & b) for b in seg] for a in seg])


def body_part_adjacency() -> torch.Tensor:
    """(17, 17) bool over `PART_NAMES`: `segment_adjacency`, the upper torso as the torso, plus upper
    arm / upper torso and thigh / lower torso (see the module docstring)."""
    s = len(SEGMENTS)
    adj = torch.zeros(s + 1, s + 1, dtype=torch.bool)
    adj[:s, :s] = segment_adjacency()
    adj[s, :s], adj[:s, s], adj[s, s] = adj[_TORSO, :s], adj[:s, _TORSO], True
    for side in ("left", "right"):
        upper_arm = SEGMENTS.index((f"{side}_shoulder", f"{side}_elbow"))
        thigh = SEGMENTS.index((f"{side}_hip", f"{side}_knee"))
        adj[s, upper_arm] = adj[upper_arm, s] = True
        adj[_TORSO, thigh] = adj[thigh, _TORSO] = True
    return adj


def body_part_labels(vertices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(V,) `PART_NAMES` label of each vertex (V, 3): `nearest_segment`, torso vertices above the
    torso segment's middle relabelled `UPPER_TORSO`; points as :func:`nearest_segment`."""
    part = nearest_segment(vertices, points)
    a, b = (_POINTS.index(n) for n in SEGMENTS[_TORSO])
    d = points[b] - points[a]
    t = ((vertices - points[a]) * d).sum(-1) / (d * d).sum().clamp_min(1e-12)
    return torch.where((part == _TORSO) & (t > 0.5), torch.full_like(part, UPPER_TORSO), part)


def nearest_segment(vertices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(V,) index of the `SEGMENTS` segment nearest to each vertex (V, 3); points: (K + 2, 3) keypoints
    with neck and pelvis (``capsules.with_virtual_points``)."""
    idx = torch.tensor([(_POINTS.index(a), _POINTS.index(b)) for a, b in SEGMENTS], device=points.device)
    p, d = points[idx[:, 0]], points[idx[:, 1]] - points[idx[:, 0]]
    t = (((vertices[:, None] - p[None]) * d[None]).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    return (vertices[:, None] - (p[None] + t[..., None] * d[None])).norm(dim=-1).argmin(dim=1)


def main_component(faces: torch.Tensor, n_vertices: int) -> torch.Tensor:
    """(V,) bool: the vertices of the mesh's largest connected component (the skin)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = faces.cpu().numpy()
    rows, cols = f.reshape(-1), f[:, [1, 2, 0]].reshape(-1)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    _, label = connected_components(graph, directed=False)
    return torch.as_tensor(label == np.bincount(label).argmax())


@torch.no_grad()
def body_mesh_parts(body: BodyModel, rest: Any) -> MeshParts:
    """`MeshParts` of a body model for one shape (``rest``), labelled at the canonical zero pose. Pairs
    intersecting there, or at the model's own zero pose (Anny's arms down), don't count."""
    device = rest.rest_vertices.device
    out = body.forward(CanonicalPose.rest(1, device), rest, vertices=True)
    zero, kp = out.vertices[0].cpu(), out.keypoints[0].cpu()
    own = body.bone_transforms(torch.eye(4, device=device).expand_as(out.deltas).contiguous(), rest)
    rest_meshes = [zero, body.vertices(own, rest)[0].cpu()]
    faces = body.faces.cpu().long()
    part = body_part_labels(zero, with_virtual_points(kp))
    part[~main_component(faces, len(zero))] = -1
    return mesh_parts(faces, part, body_part_adjacency(), rest_meshes)
