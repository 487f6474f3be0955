"""Self-interpenetration penalties for any body model (Anny, SMPL, SMPL-H, SMPL-X).

(a) Capsule proxy: one capsule per bone of a skeleton (radius from the rest mesh), overlap of
    capsules of non-adjacent bones is penalised (hands/forearms vs torso/thighs, leg vs leg).
    Cheap, batched over frames, smooth almost everywhere.
(b) Mesh term, SMPLify-X style: colliding triangle pairs are found (``collision_mesh``) and each
    intruding vertex is penalised by a local cone distance field of the receiving triangle:
    ``psi = relu(depth)^2 * relu(1 - radial / (cone * radius))^2``, where depth is how far the
    vertex lies behind the receiver's plane (against its outward normal), radial its distance from
    the normal axis through the receiver's centroid and radius the receiver's RMS centroid-to-corner
    radius. Both directions of each pair are penalised; pairs sharing a vertex are excluded.

All penalties are pure functions with gradients w.r.t. joints / vertices.
"""

from __future__ import annotations

import torch

from backend.fit.collision_mesh import drop_pairs, find_colliding_pairs

__all__ = [
    "capsule_penalty",
    "capsule_pairs",
    "capsule_radii",
    "cone_field",
    "drop_pairs",
    "find_colliding_pairs",
    "mesh_collision_penalty",
    "penetration_depth",
    "segment_distance",
    "skeleton_bones",
]


# ---------------------------------------------------------------------------- capsule proxy
def skeleton_bones(parents: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Bones (B, 2) = (parent joint, child joint) of a kinematic tree given by ``parents`` (J,)."""
    return torch.tensor([(p, j) for j, p in enumerate(parents) if p >= 0], dtype=torch.long)


def capsule_pairs(bones: torch.Tensor, min_hops: int = 3) -> torch.Tensor:
    """Bone pairs (P, 2), a < b, at least ``min_hops`` apart (bones sharing a joint are 1 apart)."""
    n = bones.shape[0]
    touch = (bones[:, None, :, None] == bones[None, :, None, :]).flatten(2).any(-1)
    hops = torch.full((n, n), n + 1, dtype=torch.long)
    hops[torch.eye(n, dtype=torch.bool)] = 0
    reach = torch.eye(n, dtype=torch.bool)
    for step in range(1, n):
        nxt = reach | (reach.float() @ touch.float() > 0)
        hops[nxt & ~reach] = step
        if bool((nxt == reach).all()):
            break
        reach = nxt
    a, b = torch.triu_indices(n, n, offset=1)
    keep = hops[a, b] >= min_hops
    return torch.stack([a[keep], b[keep]], dim=1)


def _point_segment_distance(x: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Distances (N, B) from points x (N, 3) to segments p-q (B, 3)."""
    d = q - p
    t = (((x[:, None] - p[None]) * d[None]).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)[None]).clamp(0, 1)
    closest = p[None] + t[..., None] * d[None]
    return (x[:, None] - closest).norm(dim=-1)


def capsule_radii(
    rest_vertices: torch.Tensor, rest_joints: torch.Tensor, bones: torch.Tensor, quantile: float = 0.5
) -> torch.Tensor:
    """Capsule radii (B,) from a rest mesh: per bone, the ``quantile`` of the distances of the
    vertices (V, 3) whose nearest bone it is; 0 for bones no vertex is nearest to.
    ``rest_joints``: (J, 3)."""
    dist = _point_segment_distance(rest_vertices, rest_joints[bones[:, 0]], rest_joints[bones[:, 1]])
    best, owner = dist.min(dim=1)
    radii = torch.zeros(bones.shape[0], dtype=rest_vertices.dtype, device=rest_vertices.device)
    for b in range(bones.shape[0]):
        mine = best[owner == b]
        if mine.numel():
            radii[b] = torch.quantile(mine, quantile)
    return radii


def segment_distance(
    p0: torch.Tensor, p1: torch.Tensor, q0: torch.Tensor, q1: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """Closest distance (...,) between segments p0-p1 and q0-q1 (each (..., 3))."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e = (d1 * d1).sum(-1), (d2 * d2).sum(-1)
    b, c, f = (d1 * d2).sum(-1), (d1 * r).sum(-1), (d2 * r).sum(-1)
    denom = a * e - b * b
    s = torch.where(denom > eps, ((b * f - c * e) / denom.clamp_min(eps)).clamp(0, 1), torch.zeros_like(a))
    t = (b * s + f) / e.clamp_min(eps)
    s = torch.where(
        t < 0,
        (-c / a.clamp_min(eps)).clamp(0, 1),
        torch.where(t > 1, ((b - c) / a.clamp_min(eps)).clamp(0, 1), s),
    )
    t = t.clamp(0, 1)
    gap = (p0 + s[..., None] * d1) - (q0 + t[..., None] * d2)
    return ((gap * gap).sum(-1) + eps).sqrt()


def capsule_penalty(
    joints: torch.Tensor, bones: torch.Tensor, radii: torch.Tensor, pairs: torch.Tensor
) -> torch.Tensor:
    """Sum of squared capsule overlaps per frame.

    Args:
        joints: (T, J, 3) posed joints. bones: (B, 2) joint indices. radii: (B,).
        pairs: (P, 2) bone pairs that may collide (:func:`capsule_pairs`).
    Returns:
        (T,) sum over pairs of relu(r_a + r_b - distance)^2 (metres^2).
    """
    ba, bb = bones[pairs[:, 0]], bones[pairs[:, 1]]
    dist = segment_distance(
        joints[:, ba[:, 0]], joints[:, ba[:, 1]], joints[:, bb[:, 0]], joints[:, bb[:, 1]]
    )
    overlap = torch.relu(radii[pairs[:, 0]] + radii[pairs[:, 1]] - dist)
    return (overlap * overlap).sum(-1)


# ---------------------------------------------------------------------------- mesh term
def _frames(tri: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centroid (N, 3), unit normal (N, 3) and RMS centroid-to-corner radius (N,) of triangles (N, 3, 3)."""
    centre = tri.mean(dim=1)
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal = normal / ((normal * normal).sum(-1, keepdim=True) + eps).sqrt()
    radius = (((tri - centre[:, None]) ** 2).sum(-1).mean(-1) + eps).sqrt()  # RMS: smooth, unlike max
    return centre, normal, radius


def cone_field(
    points: torch.Tensor, receivers: torch.Tensor, cone: float = 2.0, eps: float = 1e-12
) -> torch.Tensor:
    """Cone distance field of receiver triangles at intruding points.

    Args:
        points: (N, K, 3) intruder vertices. receivers: (N, 3, 3) receiving triangles.
    Returns:
        (N, K) relu(depth)^2 * relu(1 - radial / (cone * radius))^2.
    """
    centre, normal, radius = _frames(receivers, eps)
    rel = points - centre[:, None]
    depth = -(rel * normal[:, None]).sum(-1)
    planar = rel + depth[..., None] * normal[:, None]
    radial = ((planar * planar).sum(-1) + eps).sqrt()
    falloff = torch.relu(1.0 - radial / (cone * radius[:, None]))
    return torch.relu(depth) ** 2 * falloff**2


def mesh_collision_penalty(
    vertices: torch.Tensor, faces: torch.Tensor, pairs: torch.Tensor, cone: float = 2.0
) -> torch.Tensor:
    """SMPLify-X-style penetration penalty per frame.

    Args:
        vertices: (T, V, 3) posed meshes (with gradients). faces: (F, 3).
        pairs: (P, 3) (frame, triangle i, triangle j) from :func:`find_colliding_pairs`.
    Returns:
        (T,) sum over pairs, both directions, of :func:`cone_field` at the intruder's vertices.
    """
    out = vertices.new_zeros(vertices.shape[0])
    if pairs.numel() == 0:
        return out
    frame, fi, fj = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    tri_i = vertices[frame[:, None], faces[fi]]  # (P, 3, 3)
    tri_j = vertices[frame[:, None], faces[fj]]
    value = cone_field(tri_i, tri_j, cone).sum(-1) + cone_field(tri_j, tri_i, cone).sum(-1)
    return out.index_add(0, frame, value)


def penetration_depth(
    vertices: torch.Tensor, faces: torch.Tensor, pairs: torch.Tensor, cone: float = 2.0
) -> float:
    """Largest depth (metres) of an intruding vertex behind a colliding receiver within its cone; 0 if none."""
    if pairs.numel() == 0:
        return 0.0
    with torch.no_grad():
        frame = pairs[:, 0]
        tri_i = vertices[frame[:, None], faces[pairs[:, 1]]]
        tri_j = vertices[frame[:, None], faces[pairs[:, 2]]]
        field = torch.cat([cone_field(tri_i, tri_j, cone), cone_field(tri_j, tri_i, cone)])
    # the falloff is <= 1, so sqrt(field) bounds depth from below; report the largest in-cone depth
    return float(field.sqrt().max())
