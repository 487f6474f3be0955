"""Self-collision penalties: capsule proxy and SMPLify-X-style mesh term."""

from __future__ import annotations

import torch

from backend.fit.collision import (
    capsule_pairs,
    capsule_penalty,
    capsule_radii,
    drop_pairs,
    find_colliding_pairs,
    mesh_collision_penalty,
    penetration_depth,
    segment_distance,
    skeleton_bones,
)
from backend.fit.collision_mesh import candidate_pairs_torch, candidate_pairs_warp
from backend.geometry.skeleton import BODY_PARENTS


def plate_and_arm(depth: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """A square 'torso' plate at z = 0 (normal +z, 8 triangles) and a bent 'arm' strip poking
    ``depth`` through it from above."""
    grid = torch.tensor([[x, y, 0.0] for y in (-1.0, 0.0, 1.0) for x in (-1.0, 0.0, 1.0)])
    plate = []
    for r in range(2):
        for c in range(2):
            a, b, d, e = 3 * r + c, 3 * r + c + 1, 3 * (r + 1) + c, 3 * (r + 1) + c + 1
            plate += [(a, b, e), (a, e, d)]
    arm = torch.tensor([[-0.3, 0.1, 1.0], [0.3, 0.1, 1.0], [-0.25, 0.15, 0.4], [0.25, 0.15, 0.4],
                        [-0.2, 0.2, -depth], [0.2, 0.2, -depth]])  # fmt: skip
    strip = [(9, 10, 11), (10, 12, 11), (11, 12, 13), (12, 14, 13)]
    verts = torch.cat([grid, arm])
    return verts.double(), torch.tensor(plate + strip, dtype=torch.long)


def test_segment_distance_cases() -> None:
    p0, p1 = torch.tensor([0.0, 0, 0]), torch.tensor([1.0, 0, 0])
    q0, q1 = torch.tensor([0.5, 1, -1]), torch.tensor([0.5, 1, 1])
    assert abs(float(segment_distance(p0, p1, q0, q1)) - 1.0) < 1e-5
    q0, q1 = torch.tensor([2.0, 0, 0]), torch.tensor([3.0, 0, 0])  # collinear, gap 1
    assert abs(float(segment_distance(p0, p1, q0, q1)) - 1.0) < 1e-5
    q0, q1 = torch.tensor([0.0, 2, 0]), torch.tensor([1.0, 2, 0])  # parallel
    assert abs(float(segment_distance(p0, p1, q0, q1)) - 2.0) < 1e-5


def test_capsule_proxy_pairs_radii_and_gradcheck() -> None:
    bones = skeleton_bones(BODY_PARENTS)
    pairs = capsule_pairs(bones, min_hops=3)
    assert bones.shape == (21, 2) and len(pairs) > 50
    # forearm (18->20) vs spine (3->6) may collide; upper arm vs its collar may not
    as_set = {tuple(bones[p].flatten().tolist()) for p in pairs}
    assert (3, 6, 18, 20) in as_set
    assert all(not ({13, 16} <= set(x)) for x in as_set if x[:2] == (13, 16) and x[2:] == (16, 18))
    joints = torch.randn(22, 3, generator=torch.Generator().manual_seed(0))
    verts = joints[bones[:, 1]] + 0.05 * torch.randn(21, 3)
    radii = capsule_radii(torch.cat([verts, verts + 0.01]), joints, bones)
    assert radii.shape == (21,) and bool((radii >= 0).all())
    # gradcheck on a small overlapping configuration
    small_bones = torch.tensor([[0, 1], [2, 3]])
    pts = torch.tensor(
        [[[0.0, 0, 0], [1.0, 0.1, 0], [0.4, -0.5, 0.15], [0.6, 0.5, 0.05]]], dtype=torch.double
    )
    pts = pts.repeat(2, 1, 1) + 0.01 * torch.randn(2, 4, 3, dtype=torch.double)
    pts.requires_grad_(True)
    rad = torch.tensor([0.2, 0.2], dtype=torch.double)
    pen = lambda j: capsule_penalty(j, small_bones, rad, torch.tensor([[0, 1]]))  # noqa: E731
    assert bool((pen(pts) > 0).all())
    assert torch.autograd.gradcheck(pen, (pts,), eps=1e-6, atol=1e-5)


def test_broad_phase_warp_matches_torch() -> None:
    gen = torch.Generator().manual_seed(1)
    verts = torch.rand(200, 3, generator=gen)
    faces = torch.randint(0, 200, (300, 3), generator=gen)
    a = {tuple(p) for p in candidate_pairs_warp(verts, faces).tolist()}
    b = {tuple(p) for p in candidate_pairs_torch(verts, faces).tolist()}
    assert a == b and len(a) > 0


def test_mesh_term_detects_and_gradcheck() -> None:
    verts, faces = plate_and_arm()
    pairs = find_colliding_pairs(verts, faces, use_warp=False)
    assert len(pairs) > 0 and bool((pairs[:, 1] < 8).all()) and bool((pairs[:, 2] >= 8).all())
    far = verts.clone()
    far[9:, 2] += 2.0  # arm lifted off the plate
    assert len(find_colliding_pairs(far, faces, use_warp=False)) == 0
    gen = torch.Generator().manual_seed(2)
    batch = verts + 0.01 * torch.randn(2, *verts.shape, generator=gen, dtype=verts.dtype)
    pairs = find_colliding_pairs(batch, faces, use_warp=True)
    assert set(pairs[:, 0].tolist()) == {0, 1}
    assert (
        len(drop_pairs(pairs, pairs[pairs[:, 0] == 0][:, [2, 1]], len(faces))) == 0
    )  # same pairs, any order
    x = batch.clone().requires_grad_(True)
    value = mesh_collision_penalty(x, faces, pairs)
    assert value.shape == (2,) and bool((value > 0).all())
    assert torch.autograd.gradcheck(
        lambda v: mesh_collision_penalty(v, faces, pairs), (x,), eps=1e-6, atol=1e-5
    )


def _resolve(
    verts: torch.Tensor, faces: torch.Tensor, movable: torch.Tensor, steps: int = 400
) -> torch.Tensor:
    x = verts.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    for _ in range(steps):
        pairs = find_colliding_pairs(x, faces, use_warp=False)
        if len(pairs) == 0:
            break
        opt.zero_grad()
        mesh_collision_penalty(x[None], faces, pairs).sum().backward()
        x.grad[~movable] = 0.0
        opt.step()
    return x.detach()


def test_mesh_term_removes_penetration() -> None:
    verts, faces = plate_and_arm(depth=0.2)
    assert penetration_depth(verts[None], faces, find_colliding_pairs(verts, faces, use_warp=False)) > 0.1
    # both surfaces free: they part locally, nothing flies away
    x = _resolve(verts, faces, torch.ones(len(verts), dtype=torch.bool))
    assert len(find_colliding_pairs(x, faces, use_warp=False)) == 0
    assert float((x - verts).abs().max()) < 0.3
    # torso fixed, arm free: the arm is pushed back out, penetration depth ~0
    arm = torch.arange(len(verts)) >= 9
    x = _resolve(verts, faces, arm)
    assert len(find_colliding_pairs(x, faces, use_warp=False)) == 0
    assert float(x[arm, 2].min()) > -1e-3
    torch.testing.assert_close(x[~arm], verts[~arm])


def test_broad_phase_group_filter_matches_torch() -> None:
    """Part groups filtered inside the warp kernel give the torch path's filtered candidates."""
    gen = torch.Generator().manual_seed(3)
    verts = torch.rand(200, 3, generator=gen)
    faces = torch.randint(0, 200, (300, 3), generator=gen)
    groups = torch.randint(0, 4, (300,), generator=gen)
    ignore = torch.eye(4, dtype=torch.bool)
    ignore[0, 1] = ignore[1, 0] = True
    kept = candidate_pairs_torch(verts, faces)
    kept = kept[~ignore[groups[kept[:, 0]], groups[kept[:, 1]]]]
    warp = candidate_pairs_warp(verts, faces, 0.0, groups, ignore)
    assert {tuple(p) for p in warp.tolist()} == {tuple(p) for p in kept.tolist()} and len(kept) > 0
    assert len(warp) < len(candidate_pairs_warp(verts, faces))
