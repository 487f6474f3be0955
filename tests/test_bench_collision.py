"""The self-collision bench's mesh measurements on toy meshes (no fits, no body model)."""

from __future__ import annotations

import numpy as np
import torch

from backend.fit.capsules import SEGMENTS
from backend.fit.mesh_parts import mesh_parts, pose_pairs, segment_adjacency
from bench.collision import (
    MIN_PAIRS,
    CollisionBenchConfig,
    FrameMeasures,
    intrusion_depth,
    measure,
    signed_distance,
    summarise,
    table,
    verdict,
    vertex_normals,
)


def grid_box(lo: tuple[float, ...], hi: tuple[float, ...], n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed box surface, each side an n x n grid of quads (2 triangles each), wound outward.

    Returns vertices (6 (n+1)^2, 3) float64 and faces (12 n^2, 3) long (sides do not share vertices).
    """
    lo_t, hi_t = torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)
    verts, faces = [], []
    s = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    uu, vv = torch.meshgrid(s, s, indexing="ij")
    for axis in range(3):
        for side in (0, 1):
            u_ax, v_ax = [a for a in range(3) if a != axis]
            p = torch.zeros((n + 1) ** 2, 3, dtype=torch.float64)
            p[:, axis] = (hi_t if side else lo_t)[axis]
            p[:, u_ax] = lo_t[u_ax] + uu.reshape(-1) * (hi_t - lo_t)[u_ax]
            p[:, v_ax] = lo_t[v_ax] + vv.reshape(-1) * (hi_t - lo_t)[v_ax]
            base = sum(len(v) for v in verts)
            f = []
            for i in range(n):
                for j in range(n):
                    a, b, c, d = (
                        i * (n + 1) + j,
                        (i + 1) * (n + 1) + j,
                        (i + 1) * (n + 1) + j + 1,
                        i * (n + 1) + j + 1,
                    )
                    f += [(a, b, c), (a, c, d)]
            f_t = torch.tensor(f) + base
            tri = p[f_t[0] - base]
            normal = torch.linalg.cross(tri[1] - tri[0], tri[2] - tri[0])
            if float(normal[axis]) * (1 if side else -1) < 0:
                f_t = f_t[:, [0, 2, 1]]
            verts.append(p)
            faces.append(f_t)
    return torch.cat(verts), torch.cat(faces)


def two_boxes(gap: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A unit box (part 0) and a narrow box (part 1) whose end starts `gap` beyond the unit box's +x
    side (negative: that far inside it). Returns vertices (V, 3), faces (F, 3), vertex parts (V,)."""
    va, fa = grid_box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), n=10)
    vb, fb = grid_box((1.0 + gap, 0.35, 0.35), (2.0 + gap, 0.65, 0.65), n=8)
    part = torch.cat([torch.zeros(len(va), dtype=torch.long), torch.ones(len(vb), dtype=torch.long)])
    return torch.cat([va, vb]).float(), torch.cat([fa, fb + len(va)]), part


def parts_for(
    faces: torch.Tensor, part: torch.Tensor, rest: list[torch.Tensor] | None = None, adjacent: bool = False
):  # noqa: ANN201
    adj = torch.eye(2, dtype=torch.bool) | (torch.ones(2, 2, dtype=torch.bool) if adjacent else False)
    return mesh_parts(faces, part, adj, rest or [])


def test_box_normals_point_outward() -> None:
    v, f = grid_box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), n=4)
    n = vertex_normals(v, f)
    assert bool((((v - 0.5) * n).sum(-1) > 0).all())


def test_signed_distance_sign_and_trust() -> None:
    v, f = grid_box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), n=10)
    n = vertex_normals(v, f)
    pts = torch.tensor([[0.5, 0.5, 0.9], [0.5, 0.5, 1.2]], dtype=torch.float64)
    s = signed_distance(pts, v, n)
    assert abs(float(s[0]) + 0.1) < 1e-6 and abs(float(s[1]) - 0.2) < 1e-6


def test_interpenetrating_boxes_count_and_depth() -> None:
    v, f, part = two_boxes(gap=-0.2)
    parts = parts_for(f, part)
    pairs = pose_pairs(v[None], parts)
    assert len(pairs) > MIN_PAIRS
    assert bool((parts.face_part[pairs[:, 1]] != parts.face_part[pairs[:, 2]]).all())
    depth = intrusion_depth(v, parts, pairs[:, 1:])
    assert 0.12 < depth < 0.25  # the narrow box's end is 0.2 inside, the unit box's side 0.15


def test_boxes_apart_have_no_pairs_and_no_depth() -> None:
    v, f, part = two_boxes(gap=0.05)
    parts = parts_for(f, part)
    assert len(pose_pairs(v[None], parts)) == 0
    m = measure(v[None], parts)
    assert m.pairs.tolist() == [0] and m.depth_m.tolist() == [0.0] and m.cone_depth_m.tolist() == [0.0]


def test_rest_pairs_and_adjacent_parts_are_excluded() -> None:
    v, f, part = two_boxes(gap=-0.2)
    rest = parts_for(f, part, rest=[v])  # the same overlap already at rest: not pose-caused
    assert len(rest.rest_pairs) > 0
    m = measure(v[None], rest)
    assert m.pairs.tolist() == [0] and m.depth_m.tolist() == [0.0]
    deeper, *_ = two_boxes(gap=-0.3)  # a deeper overlap crosses other triangles: those count
    assert int(measure(deeper[None], rest).pairs[0]) > 0
    assert len(pose_pairs(v[None], parts_for(f, part, adjacent=True))) == 0


def test_measure_batches_frames_and_summary() -> None:
    inside, f, part = two_boxes(gap=-0.2)
    apart, *_ = two_boxes(gap=0.1)
    m = measure(torch.stack([inside, apart, inside]), parts_for(f, part), chunk=2)
    assert m.pairs[0] > MIN_PAIRS and m.pairs[1] == 0 and m.pairs[2] == m.pairs[0]
    assert m.depth_m[0] > 0.1 and m.depth_m[1] == 0.0 and m.cone_depth_m[0] > 0.0
    s = FrameMeasures.concat([m, m]).summary()
    assert s["frames"] == 6 and abs(s["intersecting_share"] - 2 / 3) < 1e-3
    assert abs(s["depth_mm"] - 1000 * m.depth_m.mean()) < 1e-2


def test_segment_adjacency_and_verdict() -> None:
    adj = segment_adjacency()
    idx = {seg: i for i, seg in enumerate(SEGMENTS)}
    torso, upper = idx[("pelvis", "neck")], idx[("left_shoulder", "left_elbow")]
    fore = idx[("left_elbow", "left_wrist")]
    assert bool(adj[upper, fore]) and not bool(adj[torso, upper]) and bool(adj.diagonal().all())
    off = {"intersecting_share": 0.6, "depth_mm": 20.0, "pa_mpjpe_mm": 50.0}
    good = {"intersecting_share": 0.2, "depth_mm": 9.0, "pa_mpjpe_mm": 51.5}
    assert verdict(off, good)["meets"]
    bad = verdict(off, {**good, "pa_mpjpe_mm": 52.5})
    assert not bad["meets"] and bad["share_halved"] and not bad["pa_mpjpe_within_2mm"]
    assert not verdict(off, {**good, "depth_mm": 11.0})["meets"]
    assert np.isfinite(off["depth_mm"])


def test_summarise_and_table() -> None:
    m = FrameMeasures(
        np.array([0, 10]), np.array([0.0, 0.02]), np.array([0.0, 0.01]), np.zeros((2, 16, 16), int)
    )
    m.by_parts[1, 0, 7] = 10
    run = {"fit_s": 2.0, "fit_frames": 2, "pa": np.array([40.0, 50.0]), "evaluations_with_term": 300}
    entry = {
        "measures": {"truth": m, "off": m, "on w=10000": m},
        "runs": {"off": {**run, "term_s": {}}, "on w=10000": {**run, "term_s": {"cpu": 0.001}}},
    }
    res = {k: summarise([entry], k) for k in ("truth", "off", "on w=10000")}
    assert res["truth"]["top_part_pairs"] == {"lower torso / left_elbow-left_wrist": 5.0}
    assert "pa_mpjpe_mm" not in res["truth"] and res["on w=10000"]["term_ms_per_frame_whole_fit_cpu"] == 150.0
    text = table([("c", res)], ["off", "on w=10000"])
    assert (
        "| c | on w=10000 | 50% / 50% | 10.0 / 10.0 | 45.0 / 45.0 | 1.000 / 1.000 | 0.5000 | 50% / 10.0 |" in text
    )


def test_run_labels_map_to_fit_settings() -> None:
    config = CollisionBenchConfig(weights=(1e3,), mesh_weights=(1e4, 1e5))
    assert config.labels() == ["off", "on w=1000", "mesh w=10000", "mesh w=100000"]
    off, on, mesh = (config.fit_config(label) for label in ("off", "on w=1000", "mesh w=100000"))
    assert off.collision.mode == "off"
    assert (on.collision.mode, on.collision.w_capsules) == ("on", 1000.0)
    assert (mesh.collision.mode, mesh.collision.w_mesh) == ("mesh", 100000.0)


def test_body_parts_follow_smplify_x_filter() -> None:
    """17 parts: the torso split in two; armpits (upper arm / upper torso) and hip folds (thigh /
    lower torso) do not count, a forearm or hand in the torso does."""
    from backend.fit.capsules import _POINTS
    from backend.fit.mesh_parts import PART_NAMES, UPPER_TORSO, body_part_adjacency, body_part_labels

    adj = body_part_adjacency()
    name = {n: i for i, n in enumerate(PART_NAMES)}
    assert adj.shape == (17, 17) and bool((adj == adj.T).all()) and bool(adj.diagonal().all())
    upper, lower = name["upper torso"], name["lower torso"]
    assert upper == UPPER_TORSO and bool(adj[upper, lower])
    assert bool(adj[upper, name["left_shoulder-left_elbow"]]) and not bool(adj[lower, name["left_shoulder-left_elbow"]])
    assert bool(adj[lower, name["right_hip-right_knee"]]) and not bool(adj[upper, name["right_hip-right_knee"]])
    for torso in (upper, lower):
        assert not bool(adj[torso, name["left_elbow-left_wrist"]])
    points = torch.full((len(_POINTS), 3), 5.0)  # every other point far away
    points[_POINTS.index("pelvis")] = torch.zeros(3)
    points[_POINTS.index("neck")] = torch.tensor([0.0, 0.5, 0.0])
    for n, x in (("left_shoulder", 0.2), ("right_shoulder", -0.2)):
        points[_POINTS.index(n)] = torch.tensor([x, 0.5, 0.0])
    labels = body_part_labels(torch.tensor([[0.0, 0.4, 0.05], [0.0, 0.1, 0.05]]), points)
    assert labels.tolist() == [upper, lower]
