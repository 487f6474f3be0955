"""Estimating a source rig's T-pose joint frames from its motion (to derive `rest_rotations`).

Some rigs (Reallusion CC_Base in ``cmu_iclone_bvh``, Rokoko) do not show a human pose when all
local rotations are zero: every bone lies along a local axis. Their rest corrections cannot come
from the zero pose, so `sources.py` lists them as ``rest_rotations``, derived once with
`estimate_rest_rotations` on a few clips and checked with `hinge_purity`.

The estimate compares, frame by frame, the source joint's world rotation with an anatomical
frame built from joint positions: the bone direction plus a side axis (knee and elbow hinge
axes from bent limbs, the hip or shoulder line for the trunk, neck and head, the shin-foot plane
for the feet). The mean relative rotation is snapped to the nearest axis-aligned rotation.
"""

from __future__ import annotations

import itertools
from types import MappingProxyType

import numpy as np
import roma
import torch

from backend.geometry.linalg import kabsch
from backend.geometry.linalg import unit as _unit
from backend.geometry.skeleton import BODY_JOINTS
from backend.train.mocap.canonical import LEAF_TIPS, TEMPLATE_POSITIONS
from backend.train.mocap.common import Motion, Skeleton, motion_world
from backend.train.mocap.retarget import Retargeted, RetargetSpec

J = MappingProxyType({n: i for i, n in enumerate(BODY_JOINTS)})
# Primary bone (joint -> child) per canonical joint; leaves use LEAF_TIPS.
PRIMARY: tuple[tuple[str, str], ...] = (
    ("spine1", "spine2"), ("spine2", "spine3"), ("neck", "head"),
    ("left_collar", "left_shoulder"), ("right_collar", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"), ("right_hip", "right_knee"),
    ("left_knee", "left_ankle"), ("right_knee", "right_ankle"),
    ("left_ankle", "left_foot"), ("right_ankle", "right_foot"),
)  # fmt: skip




def _side_axis(name: str, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(canonical axis (3,), observed axis (T,3), valid (T,)) for the secondary frame axis."""

    def v(a: str, b: str) -> np.ndarray:
        return p[:, J[b]] - p[:, J[a]]

    def angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.degrees(np.arccos(np.clip(np.sum(_unit(a) * _unit(b), -1), -1, 1)))

    x = np.array([1.0, 0.0, 0.0])
    y = np.array([0.0, 1.0, 0.0])
    side = "left" if name.startswith("left") else "right"
    if name.endswith(("hip", "knee")):
        thigh, shin = v(f"{side}_hip", f"{side}_knee"), v(f"{side}_knee", f"{side}_ankle")
        return x, _unit(np.cross(thigh, shin)), angle(thigh, shin) > 25
    if name.endswith(("ankle", "foot")):
        up, foot = v(f"{side}_ankle", f"{side}_knee"), v(f"{side}_ankle", f"{side}_foot")
        ang = angle(up, foot)
        return x, _unit(np.cross(up, foot)), (ang > 50) & (ang < 150)
    if name.endswith(("shoulder", "elbow", "wrist")):
        upper, fore = v(f"{side}_shoulder", f"{side}_elbow"), v(f"{side}_elbow", f"{side}_wrist")
        axis = np.cross(fore, upper) if side == "left" else np.cross(upper, fore)
        return y, _unit(axis), angle(upper, fore) > 25
    if name.endswith("collar"):
        return y, _unit(v("spine3", "neck")), np.isfinite(v("spine3", "neck")).all(-1)
    if name == "spine1":
        line = v("right_hip", "left_hip")
    else:
        line = v("right_shoulder", "left_shoulder")
    return x, _unit(line), np.isfinite(line).all(-1)


def estimate_rest_rotations(
    skeleton: Skeleton, motion: Motion, spec: RetargetSpec, ret: Retargeted, snap: bool = True
) -> dict[str, tuple[np.ndarray, int]]:
    """Per canonical joint: (source world rotation in the T-pose (3,3) in source axes, frames used).

    ret: a retargeting of the same motion (only its mapped source positions are used).
    """
    w = np.asarray(spec.canonical_from_source)
    g_src, _ = motion_world(skeleton, motion)
    g_src = w @ g_src @ w.T
    p = ret.source_positions
    jmap = dict(spec.joint_map)
    tips = dict(LEAF_TIPS)
    pairs = dict(PRIMARY)
    out: dict[str, tuple[np.ndarray, int]] = {}
    for name, sname in jmap.items():
        if name in pairs and pairs[name] in jmap:
            d = TEMPLATE_POSITIONS[J[pairs[name]]] - TEMPLATE_POSITIONS[J[name]]
            u = p[:, J[pairs[name]]] - p[:, J[name]]
        elif name in tips and name in ("left_wrist", "right_wrist"):
            side = name.split("_")[0]
            d = np.array(tips[name])
            u = p[:, J[name]] - p[:, J[f"{side}_elbow"]]
        elif name in tips and name in ("left_foot", "right_foot"):
            side = name.split("_")[0]
            d = np.array(tips[name])
            u = p[:, J[name]] - p[:, J[f"{side}_ankle"]]
        elif name == "head":
            d = np.array(tips[name])
            u = p[:, J["head"]] - p[:, J["neck"]]
        else:
            continue
        e, e_obs, valid = _side_axis(name, p)
        valid = valid & np.isfinite(u).all(-1) & np.isfinite(e_obs).all(-1)
        if valid.sum() < 5:
            continue
        e_perp = _unit(e - np.dot(e, _unit(d)) * _unit(d))
        frame = kabsch(np.stack([_unit(d), e_perp])[None], np.stack([_unit(u[valid]), e_obs[valid]], axis=1), centre=False)
        rel = np.swapaxes(g_src[valid, skeleton.index(sname)], -1, -2) @ frame  # R_j estimates
        mean = roma.special_procrustes(torch.as_tensor(rel.mean(axis=0))).numpy()
        if snap:
            mean = nearest_axis_rotation(mean)
        out[name] = (w.T @ mean.T @ w, int(valid.sum()))
    return out


def nearest_axis_rotation(r: np.ndarray) -> np.ndarray:
    """The signed permutation rotation (one of 24) closest to r (3,3)."""
    best, best_d = np.eye(3), -np.inf
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0 and np.sum(m * r) > best_d:
                best, best_d = m, float(np.sum(m * r))
    return best


def hinge_purity(ret: Retargeted) -> dict[str, float]:
    """Share of knee and elbow rotation about the anatomical hinge axis (1.0 = a pure hinge).

    Knees flex about canonical +x; elbows about -y (left) and +y (right) in the T-pose with palms
    down. Values well below ~0.8 mean the parent's twist reference is wrong.
    """
    rv = roma.rotmat_to_rotvec(torch.as_tensor(ret.rotations)).numpy()
    axes = {
        "left_knee": (1, 0, 0),
        "right_knee": (1, 0, 0),
        "left_elbow": (0, -1, 0),
        "right_elbow": (0, 1, 0),
    }
    out = {}
    for name, axis in axes.items():
        v = rv[:, J[name]]
        ang = np.linalg.norm(v, axis=-1)
        bent = ang > np.radians(20)
        out[name] = (
            float(np.mean(v[bent] @ np.array(axis, float) / ang[bent])) if bent.any() else float("nan")
        )
    return out


HINGES: tuple[tuple[str, tuple[float, float, float], tuple[float, float, float]], ...] = (
    ("left_elbow", (1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    ("right_elbow", (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    ("left_knee", (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),
    ("right_knee", (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),
)


def estimate_hinge_twists(ret: Retargeted) -> dict[str, float]:
    """Per hinge (elbows, knees): degrees to add to the parent limb's twist (RetargetSpec.twists
    of the shoulder, elbow and wrist, or hip, knee and ankle) so the hinge turns about its
    anatomical axis. Uses frames bent by more than 20 degrees; NaN when there are none.
    """
    rv = roma.rotmat_to_rotvec(torch.as_tensor(ret.rotations)).numpy()
    out = {}
    for name, bone, target in HINGES:
        v = rv[:, J[name]]
        bent = np.linalg.norm(v, axis=-1) > np.radians(20)
        if not bent.any():
            out[name] = float("nan")
            continue
        b, t = np.array(bone), np.array(target)
        a = _unit(v[bent]).mean(axis=0)
        a = a - np.dot(a, b) * b
        out[name] = float(np.degrees(np.arctan2(np.dot(np.cross(t, a), b), np.dot(t, a))))
    return out
