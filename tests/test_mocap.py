"""Mocap loaders: synthetic BVH / ASF+AMC / DeepMimic files written here, retargeting round trips,
resampling, mirroring, the subject split, and one real file per ``../shared/mocap`` folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from backend.geometry.skeleton import BODY_JOINTS
from backend.train.mocap import (
    MocapFormatError,
    RetargetSpec,
    bone_direction_errors,
    iter_clips,
    load_amc,
    load_bvh,
    load_clip,
    load_deepmimic,
    load_source,
    mirror,
    resample,
    retarget,
    split_of,
)
from backend.train.mocap.bvh import guess_scale, parse_bvh_text
from backend.train.mocap.canonical import canonical_fk
from backend.train.mocap.dataset import DEFAULT_MOCAP_ROOT
from backend.train.mocap.sources import DAZ_SPEC, FOLDERS

J = {n: i for i, n in enumerate(BODY_JOINTS)}


def rot(order: str, deg) -> np.ndarray:
    return roma.euler_to_rotmat(order, torch.tensor(deg, dtype=torch.float64), degrees=True).numpy()


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(roma.rotmat_geodesic_distance(torch.as_tensor(a), torch.as_tensor(b))))


# ---------------------------------------------------------------- BVH writers
def bvh_text(
    joints,
    frames,
    frame_time: float,
    root_channels: str = "Xposition Yposition Zposition Zrotation Xrotation Yrotation",
) -> str:
    """joints: [(name, parent index, offset, channel names or None)]; frames: (T, C) numbers."""
    kids = {i: [k for k, j in enumerate(joints) if j[1] == i] for i in range(len(joints))}
    lines = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        name, parent, off, chans = joints[i]
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if parent < 0 else 'JOINT'} {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {off[0]} {off[1]} {off[2]}")
        chans = chans or (root_channels if parent < 0 else "Zrotation Xrotation Yrotation")
        lines.append(f"{pad}  CHANNELS {len(chans.split())} {chans}")
        for k in kids[i]:
            emit(k, depth + 1)
        if not kids[i]:
            end = "0 -6 12" if name.endswith("Foot") else "0 5 0"  # toe tip forward, others up
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {end}", pad + "  }"])
        lines.append(pad + "}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in frames]
    return "\n".join(lines) + "\n"


# A Daz-like humanoid (names of cmu_dance_martial_bvh), centimetres, zero pose = the canonical
# T-pose (bone directions as in the canonical template).
HUMANOID = [
    ("hip", -1, (0, 0, 0)), ("abdomen", 0, (0, 12, 0)), ("chest", 1, (0, 18, 0)), ("neck", 2, (0, 22, 0)),
    ("head", 3, (0, 8, 0)),
    ("lCollar", 2, (6, 15, 0)), ("lShldr", 5, (9, 5, 0)), ("lForeArm", 6, (28, 0, 0)), ("lHand", 7, (25, 0, 0)),
    ("lMid1", 8, (9, 0, 0)),
    ("rCollar", 2, (-6, 15, 0)), ("rShldr", 10, (-9, 5, 0)), ("rForeArm", 11, (-28, 0, 0)),
    ("rHand", 12, (-25, 0, 0)), ("rMid1", 13, (-9, 0, 0)),
    ("lThigh", 0, (9, -8, 0)), ("lShin", 15, (0, -42, 0)), ("lFoot", 16, (0, -41, 0)),
    ("rThigh", 0, (-9, -8, 0)), ("rShin", 18, (0, -42, 0)), ("rFoot", 19, (0, -41, 0)),
]  # fmt: skip
N_CH = 6 + 3 * (len(HUMANOID) - 1)


def humanoid_bvh(frames: np.ndarray, frame_time: float = 1 / 120) -> str:
    return bvh_text([(n, p, o, None) for n, p, o in HUMANOID], frames, frame_time)


def set_joint(frame: np.ndarray, name: str, zxy: tuple[float, float, float]) -> None:
    j = [h[0] for h in HUMANOID].index(name)
    frame[6 + 3 * (j - 1) : 9 + 3 * (j - 1)] = zxy


def plain_daz_spec() -> RetargetSpec:
    """The Daz joint map without its arm twist (the synthetic rig's palms already face down)."""
    return RetargetSpec(joint_map=DAZ_SPEC.joint_map, tips=DAZ_SPEC.tips)


# ---------------------------------------------------------------- BVH
def test_bvh_three_joints_channel_orders_units_fps(tmp_path: Path) -> None:
    joints = [
        ("root", -1, (0, 0, 0), "Xposition Yposition Zposition Zrotation Xrotation Yrotation"),
        ("a", 0, (10, 0, 0), "Xrotation Yrotation Zrotation"),
        ("b", 1, (0, 20, 0), "Xposition Yposition Zposition Yrotation Zrotation Xrotation"),
    ]
    frames = np.array(
        [[1, 2, 3, 90, 0, 0, 10, 20, 30, 0, 20, 0, 5, 6, 7], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0]],
        float,
    )
    path = tmp_path / "three.bvh"
    path.write_text(bvh_text(joints, frames, 0.04))
    sk, mo = load_bvh(path, scale=0.01)
    assert sk.names == ("root", "a", "b", "b_end")
    assert sk.parents == (-1, 0, 1, 2)
    np.testing.assert_allclose(sk.offsets[1], [0.1, 0, 0])
    assert mo.fps == pytest.approx(25.0)
    np.testing.assert_allclose(mo.root_positions[0], [0.01, 0.02, 0.03])
    np.testing.assert_allclose(mo.rotations[0, 0], rot("ZXY", [90, 0, 0]), atol=1e-9)
    np.testing.assert_allclose(mo.rotations[0, 1], rot("XYZ", [10, 20, 30]), atol=1e-9)
    np.testing.assert_allclose(mo.rotations[0, 2], rot("YZX", [5, 6, 7]), atol=1e-9)
    assert mo.local_translations is not None  # joint b animates its position (6 channels)
    np.testing.assert_allclose(mo.local_translations[0, 2], [0, 0.2, 0])
    from backend.train.mocap.common import motion_world

    _, pos = motion_world(sk, mo)
    # Root turned 90 degrees about z: joint a's +x offset of 10 cm now points along +y.
    np.testing.assert_allclose(pos[0, 1], [0.01, 0.02 + 0.1, 0.03], atol=1e-9)
    assert load_bvh(path, scale=0.01, fps=120.0)[1].fps == 120.0


def test_bvh_unit_guess_and_errors(tmp_path: Path) -> None:
    text = humanoid_bvh(np.zeros((2, N_CH)))
    assert guess_scale(parse_bvh_text(text)) == pytest.approx(0.01)  # about 1.5 m tall in cm
    with pytest.raises(MocapFormatError):
        parse_bvh_text(text.replace("MOTION", "MOTON"))
    with pytest.raises(MocapFormatError):
        parse_bvh_text(text.replace("Frames: 2", "Frames: 3"))


def test_humanoid_known_rotation_retargets_to_canonical_axes(tmp_path: Path) -> None:
    frames = np.zeros((2, N_CH))
    frames[:, 1] = 95.0
    frames[1, 3:6] = (0, 0, 30)  # root: yaw 30 degrees (Zrotation Xrotation Yrotation)
    set_joint(frames[1], "lForeArm", (0, 0, -90))  # forearm from +x (left) to +z (front)
    set_joint(frames[1], "lShin", (0, 90, 0))  # shin from down to back: knee flexion
    set_joint(frames[1], "rShldr", (-90, 0, 0))  # right arm raised: from -x to up
    folder = tmp_path / "cmu_dance_martial_bvh" / "salsa"
    folder.mkdir(parents=True)
    (folder / "05.bvh").write_text(humanoid_bvh(frames))
    info, sk, mo = load_source(folder / "05.bvh")
    assert info.name == "cmu_dance_martial_bvh/salsa" and mo.fps == 60.0  # salsa header says 120: wrong
    assert sk.offsets[1, 1] == pytest.approx(0.12)  # centimetres
    ret = retarget(sk, mo, plain_daz_spec())
    r = ret.rotations
    for j in range(22):  # frame 0 is the T-pose: all identity
        assert angle_deg(r[0, j], np.eye(3)) < 1e-4, BODY_JOINTS[j]
    assert angle_deg(r[1, J["pelvis"]], rot("Y", [30])) < 1e-4
    assert angle_deg(r[1, J["left_elbow"]], rot("Y", [-90])) < 1e-4
    assert angle_deg(r[1, J["left_knee"]], rot("X", [90])) < 1e-4
    assert angle_deg(r[1, J["right_shoulder"]], rot("Z", [-90])) < 1e-4
    assert angle_deg(r[1, J["right_elbow"]], np.eye(3)) < 1e-4
    np.testing.assert_allclose(ret.transl[:, 1], 0.95)
    assert bone_direction_errors(ret).max() < 1e-3


def test_synthetic_random_motion_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.uniform(-60, 60, size=(20, N_CH))
    frames[:, :3] = rng.normal(0, 50, size=(20, 3))
    sk, mo = load_bvh_text(tmp_path, humanoid_bvh(frames))
    for spec in (plain_daz_spec(), DAZ_SPEC):
        err = bone_direction_errors(retarget(sk, mo, spec))
        assert err.shape[1] >= 18 and err.max() < 2.0


def load_bvh_text(tmp_path: Path, text: str):
    path = tmp_path / "x.bvh"
    path.write_text(text)
    return load_bvh(path, scale=0.01)


# ---------------------------------------------------------------- ASF / AMC
CMU_BONES = [  # name, parent, direction, length (ASF units), axis, dofs
    ("lhipjoint", "root", (1, -1, 0), 1.5, (0, 0, 0), ""), ("lfemur", "lhipjoint", (0, -1, 0), 7.0, (0, 0, 20), "rx ry rz"),
    ("ltibia", "lfemur", (0, -1, 0), 7.0, (0, 0, 20), "rx"), ("lfoot", "ltibia", (0, -0.3, 1), 2.0, (0, 0, 0), "rx rz"),
    ("ltoes", "lfoot", (0, 0, 1), 1.0, (0, 0, 0), "rx"),
    ("rhipjoint", "root", (-1, -1, 0), 1.5, (0, 0, 0), ""), ("rfemur", "rhipjoint", (0, -1, 0), 7.0, (0, 0, -20), "rx ry rz"),
    ("rtibia", "rfemur", (0, -1, 0), 7.0, (0, 0, -20), "rx"), ("rfoot", "rtibia", (0, -0.3, 1), 2.0, (0, 0, 0), "rx rz"),
    ("rtoes", "rfoot", (0, 0, 1), 1.0, (0, 0, 0), "rx"),
    ("lowerback", "root", (0, 1, 0), 2.0, (0, 0, 0), "rx ry rz"), ("upperback", "lowerback", (0, 1, 0), 2.0, (0, 0, 0), "rx ry rz"),
    ("thorax", "upperback", (0, 1, 0), 2.0, (0, 0, 0), "rx ry rz"), ("lowerneck", "thorax", (0, 1, 0), 1.5, (0, 0, 0), "rx ry rz"),
    ("upperneck", "lowerneck", (0, 1, 0), 1.5, (0, 0, 0), "rx ry rz"), ("head", "upperneck", (0, 1, 0), 1.5, (0, 0, 0), "rx ry rz"),
    ("lclavicle", "thorax", (1, 0.2, 0), 3.5, (0, 0, 0), "ry rz"), ("lhumerus", "lclavicle", (1, 0, 0), 5.0, (180, -30, -90), "rx ry rz"),
    ("lradius", "lhumerus", (1, 0, 0), 4.0, (180, -30, -90), "rx"), ("lwrist", "lradius", (1, 0, 0), 1.5, (0, 90, 90), "ry"),
    ("lfingers", "lwrist", (1, 0, 0), 1.0, (0, 90, 90), "rx"),
    ("rclavicle", "thorax", (-1, 0.2, 0), 3.5, (0, 0, 0), "ry rz"), ("rhumerus", "rclavicle", (-1, 0, 0), 5.0, (180, 30, 90), "rx ry rz"),
    ("rradius", "rhumerus", (-1, 0, 0), 4.0, (180, 30, 90), "rx"), ("rwrist", "rradius", (-1, 0, 0), 1.5, (0, -90, -90), "ry"),
    ("rfingers", "rwrist", (-1, 0, 0), 1.0, (0, -90, -90), "rx"),
]  # fmt: skip


def asf_text() -> str:
    out = [":version 1.10", ":name test", ":units", "  mass 1.0", "  length 0.45", "  angle deg",
           ":root", "   order TX TY TZ RX RY RZ", "   axis XYZ", "   position 0 0 0", "   orientation 0 0 0",
           ":bonedata"]  # fmt: skip
    for i, (name, _, d, length, ax, dofs) in enumerate(CMU_BONES, start=1):
        d = np.array(d, float) / np.linalg.norm(d)
        out += ["  begin", f"     id {i}", f"     name {name}", f"     direction {d[0]} {d[1]} {d[2]}",
                f"     length {length}", f"     axis {ax[0]} {ax[1]} {ax[2]}  XYZ"]  # fmt: skip
        if dofs:
            out.append(f"    dof {dofs}")
        out.append("  end")
    out += [":hierarchy", "  begin"]
    parents = ["root"] + [b[0] for b in CMU_BONES if any(c[1] == b[0] for c in CMU_BONES)]
    for p in parents:
        out.append(f"    {p} " + " ".join(b[0] for b in CMU_BONES if b[1] == p))
    out += ["  end", ""]
    return "\n".join(out)


def amc_text(n_frames: int, ltibia_rx: float = 0.0) -> str:
    out = ["#!OML:ASF test", ":FULLY-SPECIFIED", ":DEGREES"]
    for t in range(1, n_frames + 1):
        out.append(str(t))
        out.append("root 0 17.0 0 0 90 0")
        for name, _, _, _, _, dofs in CMU_BONES:
            if dofs:
                vals = [ltibia_rx if name == "ltibia" else 0.0] + [0.0] * (len(dofs.split()) - 1)
                out.append(name + " " + " ".join(str(v) for v in vals))
    return "\n".join(out) + "\n"


def test_asf_amc_units_axes_fps(tmp_path: Path) -> None:
    folder = tmp_path / "hdm05_amc" / "test" / "1"
    folder.mkdir(parents=True)
    (folder / "HDM_mm.asf").write_text(asf_text())
    amc = folder / "HDM_mm_kick_001_120.amc"
    amc.write_text(amc_text(121, ltibia_rx=90.0))
    sk, mo = load_amc(amc)
    inch_unit = 0.0254 / 0.45
    assert mo.fps == 120.0 and mo.n_frames == 121
    np.testing.assert_allclose(mo.root_positions[0], [0, 17.0 * inch_unit, 0])
    np.testing.assert_allclose(mo.rotations[0, 0], rot("Y", [90]), atol=1e-9)  # root ry = 90
    knee = sk.index("ltibia")
    np.testing.assert_allclose(np.linalg.norm(sk.offsets[knee]), 7.0 * inch_unit)  # femur length
    c = rot("Z", [20])  # the bone's axis frame: local = C Rx C^T
    np.testing.assert_allclose(mo.rotations[0, knee], c @ rot("X", [90]) @ c.T, atol=1e-9)
    clip = load_clip(amc)
    assert (clip.source, clip.subject, split_of(clip), clip.fps) == ("hdm05_amc", "hdm05_mm", "test", 30.0)
    assert clip.n_frames == 31 and clip.duration == pytest.approx(1.0)
    assert 1.2 < clip.joints[0, J["head"], 1] - clip.joints[0, J["right_ankle"], 1] < 1.8


# ---------------------------------------------------------------- DeepMimic
DM_JOINTS = [  # name, type, parent, attach (x front, y up, z right)
    ("root", "none", -1, (0, 0, 0)), ("chest", "spherical", 0, (0, 0.236, 0)), ("neck", "spherical", 1, (0, 0.224, 0)),
    ("right_hip", "spherical", 0, (0, 0, 0.085)), ("right_knee", "revolute", 3, (0, -0.42, 0)),
    ("right_ankle", "spherical", 4, (0, -0.41, 0)), ("right_shoulder", "spherical", 1, (-0.024, 0.24, 0.18)),
    ("right_elbow", "revolute", 6, (0, -0.27, 0)), ("right_wrist", "fixed", 7, (0, -0.26, 0)),
    ("left_hip", "spherical", 0, (0, 0, -0.085)), ("left_knee", "revolute", 9, (0, -0.42, 0)),
    ("left_ankle", "spherical", 10, (0, -0.41, 0)), ("left_shoulder", "spherical", 1, (-0.024, 0.24, -0.18)),
    ("left_elbow", "revolute", 12, (0, -0.27, 0)), ("left_wrist", "fixed", 13, (0, -0.26, 0)),
]  # fmt: skip


def test_deepmimic_json_parse_and_retarget(tmp_path: Path) -> None:
    root = tmp_path / "cmu_deepmimic"
    folder = root / "cmu01-09" / "07"
    folder.mkdir(parents=True)
    skel = {"Skeleton": {"Joints": [
        {"ID": i, "Name": n, "Type": t, "Parent": p, "AttachX": a[0], "AttachY": a[1], "AttachZ": a[2],
         "AttachThetaX": 0, "AttachThetaY": 0, "AttachThetaZ": 0} for i, (n, t, p, a) in enumerate(DM_JOINTS)]}}  # fmt: skip
    (root / "humanoid3d_skeleton.txt").write_text(json.dumps(skel))
    yaw = [np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0]  # (w,x,y,z): 90 degrees about y
    frames = []
    for t in range(31):
        row = [1 / 30 if t < 30 else 0.0, 0.1 * t, 0.9, 0.0, *yaw]
        for _, kind, _, _ in DM_JOINTS[1:]:
            row += [1.0, 0, 0, 0] if kind == "spherical" else ([-1.0] if kind == "revolute" else [])
        frames.append(row)
    path = folder / "07_99.txt"
    path.write_text(json.dumps({"Loop": "none", "Frames": frames}))
    sk, mo = load_deepmimic(path)
    assert mo.fps == pytest.approx(30.0) and mo.n_frames == 31 and len(sk.names) == 15
    np.testing.assert_allclose(mo.rotations[0, 0], rot("Y", [90]), atol=1e-9)
    np.testing.assert_allclose(mo.rotations[0, 4], rot("Z", [np.degrees(-1.0)]), atol=1e-9)
    clip = load_clip(path)
    assert clip.subject == "cmu007" and split_of(clip) == "test"
    r = clip.rotations.astype(np.float64)
    # DeepMimic faces +x with z to its right; canonical faces +z: the knee's -1 rad about z is
    # flexion, +1 rad about canonical x; the root's yaw stays a yaw.
    assert angle_deg(r[0, J["right_knee"]], rot("X", [np.degrees(1.0)])) < 1e-3
    assert angle_deg(r[0, J["pelvis"]], rot("Y", [90])) < 1e-3
    np.testing.assert_allclose(clip.transl[-1], [0.0, 0.9, 3.0], atol=1e-5)  # moved along DeepMimic x
    for j in ("spine1", "spine2", "left_collar", "head", "left_foot"):  # not in DeepMimic: identity
        assert angle_deg(r[0, J[j]], np.eye(3)) < 1e-3


# ---------------------------------------------------------------- resampling, mirroring, split
def test_resample_keeps_duration_and_slerps() -> None:
    n = 121
    angles = np.linspace(0, 180, n)
    rots = rot("Y", angles[:, None])[:, None]
    tr = np.stack([np.linspace(0, 1, n)] * 3, axis=1)
    r30, t30 = resample(rots, tr, 120.0, 30.0)
    assert r30.shape == (31, 1, 3, 3) and (len(r30) - 1) / 30 == pytest.approx((n - 1) / 120)
    np.testing.assert_allclose(t30[-1], 1.0)
    r2, t2 = resample(rot("Z", np.array([[0.0], [90.0]]))[:, None], np.zeros((2, 3)), 1.0, 2.0)
    assert len(r2) == 3 and angle_deg(r2[1, 0], rot("Z", [45])) < 1e-6


def test_mirror_twice_is_identity(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = rng.uniform(-40, 40, size=(10, N_CH))
    folder = tmp_path / "cmu_dance_martial_bvh" / "indian"
    folder.mkdir(parents=True)
    (folder / "01.bvh").write_text(humanoid_bvh(frames))
    clip = load_clip(folder / "01.bvh")
    assert split_of(clip) == "val" and clip.fps == 30.0 and clip.n_frames == 3  # 10 frames at 120 fps
    m = mirror(clip)
    back = mirror(m)
    assert m.mirrored and not back.mirrored
    np.testing.assert_allclose(back.rotations, clip.rotations, atol=1e-6)
    np.testing.assert_allclose(back.joints, clip.joints, atol=1e-6)
    np.testing.assert_allclose(
        m.joints[:, J["left_wrist"], 0], -clip.joints[:, J["right_wrist"], 0], atol=1e-6
    )
    fk = canonical_fk(m.rotations, m.transl, m.offsets)  # the mirror is itself a consistent motion
    np.testing.assert_allclose(fk, m.joints, atol=1e-5)


def test_leading_reference_frame_is_dropped(tmp_path: Path) -> None:
    frames = np.zeros((13, N_CH))
    frames[:, 1] = 95.0
    frames[1:, 0] = 100.0 + 0.5 * np.arange(12)  # frame 0: reference pose 1 m away from the take
    folder = tmp_path / "cmu_dance_martial_bvh" / "martial"
    folder.mkdir(parents=True)
    (folder / "01.bvh").write_text(humanoid_bvh(frames))
    clip = load_clip(folder / "01.bvh")
    assert clip.n_frames == 3 and clip.transl[0, 0] == pytest.approx(1.0)  # 12 frames at 120 fps


def test_split_keeps_test_subjects_out_of_training(tmp_path: Path) -> None:
    for subject in ("cmu007", "hdm05_mm"):
        assert split_of(subject) == "test"
    assert split_of("cmu002") == "val" and split_of("hdm05_bd") == "train"
    (tmp_path / "cmu_iclone_bvh" / "subjects" / "007").mkdir(parents=True)
    (tmp_path / "cmu_iclone_bvh" / "subjects" / "007" / "007_01.bvh").write_text("x")
    refs = list(iter_clips(tmp_path))
    assert [(r.subject, r.split) for r in refs] == [("cmu007", "test")]
    if DEFAULT_MOCAP_ROOT.is_dir():
        refs = list(iter_clips(DEFAULT_MOCAP_ROOT))
        splits: dict[str, set[str]] = {}
        for r in refs:
            splits.setdefault(r.subject, set()).add(r.split)
        assert all(len(s) == 1 for s in splits.values())  # subject-level split
        train = {r.subject for r in refs if r.split == "train"}
        assert "cmu007" not in train and "hdm05_mm" not in train
        assert {"cmu007", "hdm05_mm"} <= {r.subject for r in refs if r.split == "test"}


# ---------------------------------------------------------------- real data
REAL_FILES = {
    "cmu_iclone_bvh": "cmu_iclone_bvh/subjects/007/007_08.bvh",
    "cmu_dance_martial_bvh": "cmu_dance_martial_bvh/martial/04.bvh",
    "cmu_deepmimic": "cmu_deepmimic/cmu01-09/07/07_03.txt",
    "hdm05_amc": "hdm05_amc/train/1/HDM_bd_depositFloorR_001_120.amc",
    "animated_drawings_bvh": "animated_drawings_bvh/cmu1/jumping_jacks.bvh",
}


@pytest.mark.parametrize("folder", FOLDERS)
def test_real_file_round_trip(folder: str) -> None:
    path = DEFAULT_MOCAP_ROOT / REAL_FILES[folder]
    if not path.exists():
        pytest.skip(f"{path} not available")
    info, sk, mo = load_source(path)
    ret = retarget(sk, mo, info.spec)
    err = bone_direction_errors(ret)
    assert err.shape[1] >= 14 and err.max() < 2.0
    clip = load_clip(path)
    up = clip.joints[:, J["head"]] - clip.joints[:, J["pelvis"]]
    assert np.percentile(up[:, 1] / np.linalg.norm(up, axis=-1), 90) > 0.9  # y is up (when standing)
    # Head joint above the ankle while standing (DeepMimic has no head joint: 1.36 m).
    assert 1.25 < np.percentile(clip.joints[:, J["head"], 1] - clip.joints[:, J["left_ankle"], 1], 90) < 1.9
