"""Retarget numbers and bone maps without Blender: rotations, corrections, the two-bone reach, maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from blender_addon import retarget_maps as maps
from blender_addon import retarget_math as rm


def _rot(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    return Rotation.random(n, random_state=rng).as_matrix()


def test_swing_is_the_rotation_that_takes_a_to_b() -> None:
    rng = np.random.default_rng(0)
    a, b = rm.unit(rng.normal(size=(50, 3))), rm.unit(rng.normal(size=(50, 3)))
    b[0] = -a[0]  # opposite vectors: a half turn
    b[1] = a[1]  # the same vector: no turn
    r = rm.swing(a, b)
    assert np.allclose(np.einsum("nij,nj->ni", r, a), b, atol=1e-9)
    assert np.allclose(r @ np.swapaxes(r, 1, 2), np.eye(3), atol=1e-9) and np.allclose(np.linalg.det(r), 1.0)
    assert np.allclose(r[1], np.eye(3), atol=1e-9)
    axis = rm.unit(np.cross(a[2], b[2]))  # the smallest turn keeps the axis perpendicular to both
    assert np.allclose(r[2] @ axis, axis, atol=1e-9)


def _rig(heads: dict[str, np.ndarray], rotations: dict[str, np.ndarray]) -> rm.RigRest:
    tails = {s: h + rotations[s][:, 1] * 0.1 for s, h in heads.items()}
    return rm.RigRest(heads, rotations, rm.segment_directions(heads, tails), ground=0.0)


_HEADS = {"hips": np.array([0.0, 0.0, 1.0]), "thigh.L": np.array([0.1, 0.0, 0.95]),
          "thigh.R": np.array([-0.1, 0.0, 0.95]), "shin.L": np.array([0.1, 0.0, 0.5]),
          "foot.L": np.array([0.1, 0.0, 0.08])}  # fmt: skip


def test_corrections_lay_the_target_along_the_source_whatever_its_rest_pose_and_roll() -> None:
    """With the source at rest the target bone points along the source's segment, and two targets that
    differ only in a bone's roll end up in the same place, each with its own roll."""
    rng = np.random.default_rng(1)
    src = _rig(_HEADS, {s: _rot(rng) for s in _HEADS})
    tilted = dict(_HEADS, **{"shin.L": np.array([0.3, -0.1, 0.55])})  # another rest pose for the thigh
    base = {s: _rot(rng) for s in _HEADS}
    roll = Rotation.from_rotvec([0.0, 1.3, 0.0]).as_matrix()  # about the bone's own Y axis
    targets = [_rig(tilted, base), _rig(tilted, dict(base, **{"thigh.L": base["thigh.L"] @ roll}))]
    out = []
    for tgt in targets:
        fix = rm.corrections(src, tgt)
        r = rm.target_rotations(np.eye(3)[None], src.directions["thigh.L"], src.directions["thigh.L"][None],
                                fix["thigh.L"], tgt.rotations["thigh.L"])[0]  # fmt: skip
        assert np.allclose(r @ tgt.rotations["thigh.L"].T @ tgt.directions["thigh.L"], src.directions["thigh.L"])
        out.append(r)
    assert np.allclose(out[1], out[0] @ roll, atol=1e-9)


def test_two_bone_directions_reach_the_scaled_end_and_keep_the_bend_plane() -> None:
    rng = np.random.default_rng(2)
    upper_s = rm.unit(rng.normal(size=(40, 3)))
    lower_s = rm.unit(upper_s + 0.8 * rng.normal(size=(40, 3)))
    reach = 0.4 * upper_s + 0.35 * lower_s
    same_u, same_l = rm.two_bone_directions(upper_s, reach, 0.75, 0.4 * 1.2, 0.35 * 1.2)
    assert np.allclose(same_u, upper_s, atol=1e-6) and np.allclose(same_l, lower_s, atol=1e-6)
    up, low = rm.two_bone_directions(upper_s, reach, 0.75, 0.5, 0.3)  # other proportions
    assert np.allclose(0.5 * up + 0.3 * low, reach * 0.8 / 0.75, atol=1e-6)
    normal = np.cross(upper_s, reach)
    assert np.allclose(np.einsum("ni,ni->n", up, normal), 0.0, atol=1e-6)  # the same bend plane
    assert np.all(np.einsum("ni,ni->n", np.cross(up, reach), normal) >= -1e-9)  # bending the same way


def test_root_follows_the_hips_scaled_from_the_ankles_and_keeps_its_offset() -> None:
    rng = np.random.default_rng(3)
    eye = {s: np.eye(3) for s in _HEADS}
    src = _rig(_HEADS, eye)
    tgt = _rig({s: 1.5 * h + np.array([2.0, 0.0, 0.0]) for s, h in _HEADS.items()}, eye)
    assert rm.motion_scale(src, tgt) == pytest.approx(1.5)
    hips = src.hip_centre + rng.normal(scale=0.3, size=(10, 3))
    turn = _rot(rng, 10)
    head = tgt.heads["hips"]
    got = rm.root_positions(hips, src, tgt, turn, head)
    want_hips = np.array([2.0, 0.0, tgt.ankle_height]) + 1.5 * (hips - np.array([0.0, 0.0, src.ankle_height]))
    assert np.allclose(got, want_hips + turn @ (head - tgt.hip_centre))
    floor = rm.foot_floor(np.full(10, src.ankle_height), src, tgt)
    assert np.allclose(floor, tgt.ankle_height)  # a standing source: the target's ankles at rest height


def test_built_in_maps_cover_the_required_slots_and_are_detected() -> None:
    for name, bone_map in maps.TARGETS.items():
        assert set(bone_map) <= set(maps.SLOTS) and all(s in bone_map for s in maps.REQUIRED)
        bones = [f"mixamorig:{b}" if name == "mixamo" else b for b in bone_map.values()]
        assert maps.detect(bones) == name
        assert maps.resolve(bone_map, bones)["hips"] == bones[list(bone_map).index("hips")]
    for chains in maps.SOURCES.values():
        assert set(chains) == set(maps.SLOTS)
    assert maps.detect(["Bone", "Bone.001"]) is None


def test_bad_bone_maps_are_refused_with_the_reason(tmp_path) -> None:
    with pytest.raises(maps.BoneMapError, match="unknown slot"):
        maps.resolve({"hips": "Hips", "tail": "Tail"}, ["Hips"])
    with pytest.raises(maps.BoneMapError, match="thigh.L"):
        maps.resolve({"hips": "Hips", "thigh.R": "R"}, ["Hips", "R"])
    bad = tmp_path / "bad.json"
    for text, reason in (("{", "cannot read"), ("[1, 2]", "JSON object"), ('{"wing.L": "x"}', "unknown slot")):
        bad.write_text(text)
        with pytest.raises(maps.BoneMapError, match=reason):
            maps.load_json(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"hips": "pelvis", "thigh.L": "l_thigh"}))
    assert maps.load_json(good) == {"hips": "pelvis", "thigh.L": "l_thigh"}
