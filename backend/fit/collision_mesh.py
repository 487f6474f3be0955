"""Colliding triangle pairs of a mesh with itself (no gradients: detection only).

Broad phase: a BVH over the triangles (warp's ``wp.Mesh`` + ``mesh_query_aabb``, CPU or CUDA; the
kernel is compiled on first use and cached by warp), or a chunked all-pairs AABB test in torch for
small meshes / when warp is unavailable. Triangles that share a vertex are never candidates.
Narrow phase (torch, vectorised): two triangles collide when an edge of one crosses the other.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from typing import Any

import torch

log = logging.getLogger(__name__)


@functools.cache
def _warp_kernel() -> tuple[Any, Any]:
    """Build the warp broad-phase kernel once (warp imported lazily)."""
    import warp as wp

    with contextlib.redirect_stdout(sys.stderr):  # warp prints its banner; stdout carries events
        wp.init()

    @wp.kernel
    def candidates(
        mesh: wp.uint64,
        points: wp.array(dtype=wp.vec3),
        tris: wp.array2d(dtype=wp.int32),
        groups: wp.array(dtype=wp.int32),
        ignore: wp.array2d(dtype=wp.int32),
        pad: float,
        out: wp.array2d(dtype=wp.int32),
        count: wp.array(dtype=wp.int32),
    ):
        i = wp.tid()
        a = points[tris[i, 0]]
        b = points[tris[i, 1]]
        c = points[tris[i, 2]]
        lo = wp.min(wp.min(a, b), c) - wp.vec3(pad, pad, pad)
        hi = wp.max(wp.max(a, b), c) + wp.vec3(pad, pad, pad)
        query = wp.mesh_query_aabb(mesh, lo, hi)
        j = int(0)  # noqa: UP018 (warp: a mutable loop variable)
        while wp.mesh_query_aabb_next(query, j):
            if j > i and ignore[groups[i], groups[j]] == 0:
                shared = int(0)  # noqa: UP018
                for u in range(3):
                    for v in range(3):
                        if tris[i, u] == tris[j, v]:
                            shared = 1
                if shared == 0:
                    slot = wp.atomic_add(count, 0, 1)
                    if slot < out.shape[0]:
                        out[slot, 0] = i
                        out[slot, 1] = j

    return wp, candidates


def candidate_pairs_warp(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    pad: float = 0.0,
    face_groups: torch.Tensor | None = None,
    ignore_groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triangle pairs (P, 2), i < j, with overlapping bounding boxes and no shared vertex.

    Args:
        vertices: (V, 3) one frame. faces: (F, 3) vertex indices.
        face_groups, ignore_groups: as :func:`find_colliding_pairs` (filtered inside the kernel).
    """
    wp, kernel = _warp_kernel()
    device = "cuda:0" if vertices.is_cuda else "cpu"
    if face_groups is None or ignore_groups is None:
        face_groups = torch.zeros(faces.shape[0], dtype=torch.int32)
        ignore_groups = torch.zeros(1, 1, dtype=torch.int32)
    groups = wp.from_torch(face_groups.to(vertices.device, torch.int32).contiguous())
    ignore = wp.from_torch(ignore_groups.to(vertices.device, torch.int32).contiguous())
    pts = wp.from_torch(vertices.detach().float().contiguous(), dtype=wp.vec3)
    tris = wp.from_torch(faces.to(device=vertices.device, dtype=torch.int32).contiguous())
    mesh = wp.Mesh(points=pts, indices=wp.from_torch(faces.to(vertices.device, torch.int32).reshape(-1)))
    capacity = max(1024, 16 * faces.shape[0])
    while True:  # grows the output once if the first guess was too small
        out = torch.empty(capacity, 2, dtype=torch.int32, device=vertices.device)
        count = torch.zeros(1, dtype=torch.int32, device=vertices.device)
        with contextlib.redirect_stdout(sys.stderr):  # warp's module-load timer prints
            wp.launch(
                kernel,
                dim=faces.shape[0],
                inputs=[mesh.id, pts, tris, groups, ignore, float(pad), wp.from_torch(out), wp.from_torch(count)],
                device=device,
            )
            wp.synchronize_device(device)
        n = int(count.item())
        if n <= capacity:
            return out[:n].long()
        capacity = n


def candidate_pairs_torch(
    vertices: torch.Tensor, faces: torch.Tensor, pad: float = 0.0, chunk: int = 1024
) -> torch.Tensor:
    """Same as :func:`candidate_pairs_warp` by chunked all-pairs box tests: (P, 2), i < j."""
    tri = vertices.detach()[faces]  # (F, 3, 3)
    lo, hi = tri.min(dim=1).values - pad, tri.max(dim=1).values + pad
    found = []
    n = faces.shape[0]
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        overlap = ((lo[sl, None] <= hi[None]) & (hi[sl, None] >= lo[None])).all(dim=-1)
        rows = torch.arange(sl.start, sl.stop, device=faces.device)
        overlap &= rows[:, None] < torch.arange(n, device=faces.device)[None]
        i, j = overlap.nonzero(as_tuple=True)
        found.append(torch.stack([i + sl.start, j], dim=1))
    pairs = torch.cat(found) if found else torch.empty(0, 2, dtype=torch.long, device=faces.device)
    share = (faces[pairs[:, 0], :, None] == faces[pairs[:, 1], None, :]).flatten(1).any(dim=1)
    return pairs[~share]


def _segment_hits_triangle(
    p: torch.Tensor, q: torch.Tensor, tri: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """Whether segments p-q (N, 3) cross triangles (N, 3, 3) (Moller-Trumbore, t in [0, 1]): (N,)."""
    d = q - p
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    h = torch.linalg.cross(d, e2)
    det = (e1 * h).sum(-1)
    ok = det.abs() > eps
    inv = 1.0 / torch.where(ok, det, torch.ones_like(det))
    s = p - tri[:, 0]
    u = (s * h).sum(-1) * inv
    qv = torch.linalg.cross(s, e1)
    v = (d * qv).sum(-1) * inv
    t = (e2 * qv).sum(-1) * inv
    return ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0) & (t <= 1)


def triangles_intersect(tri_a: torch.Tensor, tri_b: torch.Tensor) -> torch.Tensor:
    """Whether triangles (N, 3, 3) and (N, 3, 3) intersect (non-coplanar case): (N,) bool."""
    hit = torch.zeros(tri_a.shape[0], dtype=torch.bool, device=tri_a.device)
    for k in range(3):
        hit |= _segment_hits_triangle(tri_a[:, k], tri_a[:, (k + 1) % 3], tri_b)
        hit |= _segment_hits_triangle(tri_b[:, k], tri_b[:, (k + 1) % 3], tri_a)
    return hit


def find_colliding_pairs(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    face_groups: torch.Tensor | None = None,
    ignore_groups: torch.Tensor | None = None,
    use_warp: bool | None = None,
) -> torch.Tensor:
    """Intersecting, non-adjacent triangle pairs of each frame.

    Args:
        vertices: (T, V, 3) or (V, 3) posed meshes (detached internally).
        faces: (F, 3) long.
        face_groups: optional (F,) body-part label per triangle.
        ignore_groups: optional (G, G) bool, True where collisions between two parts are ignored
            (e.g. a part with itself and its neighbours, as SMPLify-X's part filter).
        use_warp: force the warp BVH (True) or the torch broad phase (False); None: warp when
            there are more than 4,000 triangles.
    Returns:
        (P, 3) long rows (frame, triangle i, triangle j).
    """
    verts = vertices.detach()
    if verts.dim() == 2:
        verts = verts[None]
    faces = faces.to(verts.device).long()
    if use_warp is None:
        use_warp = faces.shape[0] > 4000
    out = []
    for t in range(verts.shape[0]):
        v = verts[t]
        if use_warp:
            pairs = candidate_pairs_warp(v, faces, 0.0, face_groups, ignore_groups)
        else:
            pairs = candidate_pairs_torch(v, faces)
        if not use_warp and face_groups is not None and ignore_groups is not None and len(pairs):
            g = face_groups.to(pairs.device)
            pairs = pairs[~ignore_groups.to(pairs.device)[g[pairs[:, 0]], g[pairs[:, 1]]]]
        if len(pairs):
            tri = v.double()[faces]
            pairs = pairs[triangles_intersect(tri[pairs[:, 0]], tri[pairs[:, 1]])]
        frame = torch.full((len(pairs), 1), t, dtype=torch.long, device=pairs.device)
        out.append(torch.cat([frame, pairs.long()], dim=1))
    return torch.cat(out) if out else torch.empty(0, 3, dtype=torch.long)


def drop_pairs(pairs: torch.Tensor, excluded: torch.Tensor, n_faces: int) -> torch.Tensor:
    """Remove triangle pairs listed in ``excluded`` (E, 2) (any order) from ``pairs`` (P, 3).

    Use it with the pairs that already collide in the rest pose (Anny's eyes, teeth and tongue
    intersect the head at rest: about 1,100 pairs), so that only pose-induced collisions count.
    """
    if pairs.numel() == 0 or excluded.numel() == 0:
        return pairs
    lo = torch.minimum(excluded[:, 0], excluded[:, 1]).long()
    hi = torch.maximum(excluded[:, 0], excluded[:, 1]).long()
    keys = torch.minimum(pairs[:, 1], pairs[:, 2]) * n_faces + torch.maximum(pairs[:, 1], pairs[:, 2])
    return pairs[~torch.isin(keys, (lo * n_faces + hi).to(keys.device))]
