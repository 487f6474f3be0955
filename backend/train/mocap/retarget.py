"""Retargeting of a source skeleton's motion to the canonical 22-joint skeleton.

Method (bone directions, with the twist taken from the source):

1. Forward kinematics of the source gives world rotations and positions; both are expressed in
   canonical axes with the source's fixed ``canonical_from_source`` rotation (y up, z front).
2. Each mapped canonical joint ``j`` gets a constant rest correction ``R_j`` relating the
   canonical T-pose frame to the source joint's frame: either given per source
   (``rest_rotations``: the source joint's world rotation when the body is in the canonical
   T-pose, for rigs whose zero pose is not a human pose) or the rotation that takes the
   template's rest bone directions to the source's zero-pose bone directions (Kabsch over the
   child bones, or the minimal rotation for one bone or a leaf tip; otherwise the parent's).
3. Per frame, ``G_j = G_source @ R_j``; then a joint with one mapped child bone is swung by the
   minimal rotation that makes the canonical bone point exactly along the source bone (child
   joint minus joint); a joint with several child bones spreading apart (pelvis, upper spine)
   is solved by Kabsch on the child bone directions. Nearly parallel child bones (neck and
   collars leaving one point, as in CMU rigs) count as one: the first is matched, and the
   twist comes from the source. Canonical joints the source lacks get identity local rotations
   (they move rigidly with their parent). ``twists`` then turn a joint's rest frame about its
   bone (CMU-derived rigs hold the palms 30 degrees off the canonical palms-down T-pose).
4. The clip's bone table: the source's bone lengths along the canonical T-pose directions for
   matched single bones, and the source's own mean shape (expressed in the canonical frame) for
   the other child bones, so forward kinematics of the canonical skeleton reproduces every
   source bone direction and, the source's bones being rigid, every mapped joint position.
   Joints the source lacks take template offsets scaled by the source's leg length; joints the
   source puts on top of their parent (CMU ``lowerback`` at the root) stay on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import roma
import torch

from backend.geometry.linalg import kabsch as _kabsch
from backend.geometry.linalg import unit as _unit
from backend.geometry.skeleton import BODY_JOINTS, BODY_PARENTS, N_BODY_JOINTS
from backend.train.mocap.canonical import (
    LEAF_TIPS,
    TEMPLATE_OFFSETS,
    TEMPLATE_POSITIONS,
    canonical_fk,
    local_from_global,
)
from backend.train.mocap.common import MocapFormatError, Motion, Skeleton, euler_to_rotmat, motion_world

log = logging.getLogger(__name__)

MIN_BONE_M = 0.01  # source bones shorter than this carry no direction
IDENTITY3: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass(frozen=True)
class RetargetSpec:
    """How one source skeleton maps to the canonical one.

    joint_map: (canonical joint, source joint) pairs; the pelvis must be mapped.
    tips: (canonical leaf, source joint beyond it) pairs giving leaf rest directions (head top,
        hand, toe tip); leaves without a tip inherit their parent's rest correction.
    canonical_from_source: 3x3 rotation taking source world axes to canonical axes (y up,
        z front, x the body's left in the source's rest pose).
    rest_rotations: (canonical joint, (ax, ay, az) degrees, intrinsic XYZ): world rotation of
        the mapped source joint, in source axes, when the body is in the canonical T-pose.
    twists: (canonical joint, degrees): extra twist of the rest correction about the joint's
        canonical rest bone, for rigs whose T-pose turns the arms (CMU: palms 30 degrees from down).
    """

    joint_map: tuple[tuple[str, str], ...]
    tips: tuple[tuple[str, str], ...] = ()
    canonical_from_source: tuple[tuple[float, float, float], ...] = IDENTITY3
    rest_rotations: tuple[tuple[str, tuple[float, float, float]], ...] = ()
    twists: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Retargeted:
    """A motion on the canonical skeleton, in canonical axes, metres.

    rotations: (T,22,3,3) local rotations (pelvis: global orientation); transl: (T,3) pelvis
    position; offsets: (22,3) the clip's bone table; source_positions: (T,22,3) positions of the
    mapped source joints (NaN for unmapped ones); bones: (child, ancestor) canonical index pairs
    whose directions the retargeting reproduces; fps: frames per second.
    """

    rotations: np.ndarray
    transl: np.ndarray
    offsets: np.ndarray
    source_positions: np.ndarray
    bones: tuple[tuple[int, int], ...]
    fps: float




def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotations taking directions a to b. a, b: (...,3) (any length). Returns (...,3,3)."""
    a, b = np.broadcast_arrays(_unit(a), _unit(b))
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.sum(a * b, axis=-1)
    # Antiparallel: any axis perpendicular to a.
    helper = np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    perp = _unit(np.cross(a, helper))
    axis = np.where((sin < 1e-9)[..., None], perp, axis / np.maximum(sin, 1e-12)[..., None])
    rotvec = axis * np.arctan2(sin, cos)[..., None]
    return roma.rotvec_to_rotmat(torch.as_tensor(rotvec)).numpy()




def _collinear(vectors: list[np.ndarray], max_deg: float = 15.0) -> bool:
    """True when all vectors point within `max_deg` of the first one."""
    u = _unit(np.stack(vectors))
    return bool(np.all(u @ u[0] > np.cos(np.radians(max_deg))))


def _chain(anc: int, joint: int) -> list[int]:
    """Canonical joints from just below `anc` down to `joint` (inclusive)."""
    path = [joint]
    while BODY_PARENTS[path[-1]] != anc:
        path.append(BODY_PARENTS[path[-1]])
    return path[::-1]


def _axis_angle(axis: np.ndarray, degrees: float) -> np.ndarray:
    return roma.rotvec_to_rotmat(torch.as_tensor(_unit(axis) * np.radians(degrees))).numpy()


def retarget(skeleton: Skeleton, motion: Motion, spec: RetargetSpec) -> Retargeted:
    """Retarget a source motion to the canonical skeleton (see the module docstring)."""
    jmap = dict(spec.joint_map)
    if "pelvis" not in jmap:
        raise MocapFormatError("retarget spec does not map the pelvis")
    try:
        src = {BODY_JOINTS.index(c): skeleton.index(s) for c, s in jmap.items()}
    except (KeyError, ValueError) as exc:
        raise MocapFormatError(f"joint {exc} missing from the source skeleton") from exc
    w = np.asarray(spec.canonical_from_source, dtype=np.float64)
    g_src, p_src = motion_world(skeleton, motion)
    g_src = w @ g_src @ w.T
    p_src = p_src @ w.T
    rest = skeleton.rest_positions() @ w.T

    anc: dict[int, int] = {}
    for j in src:
        a = BODY_PARENTS[j]
        while a >= 0 and a not in src:
            a = BODY_PARENTS[a]
        if j != 0:
            anc[j] = a
    rest_len = {j: float(np.linalg.norm(rest[src[j]] - rest[src[a]])) for j, a in anc.items()}
    children = {j: [c for c, a in sorted(anc.items()) if a == j and rest_len[c] >= MIN_BONE_M] for j in src}
    plan = _plan(spec, src, anc, children, rest, rest_len, g_src, p_src, skeleton)

    n_t = motion.n_frames
    glob = np.empty((n_t, N_BODY_JOINTS, 3, 3))
    for j in range(N_BODY_JOINTS):
        if j not in src:
            glob[:, j] = glob[:, BODY_PARENTS[j]]
            continue
        g0 = g_src[:, src[j]] @ plan.corr[j]
        ch = children[j]
        cur = {c: p_src[:, src[c]] - p_src[:, src[j]] for c in ch}
        if j in plan.kabsch_joints:
            x = np.stack([_unit(plan.child_vec[c]) for c in ch])
            y = np.stack([_unit(cur[c]) for c in ch], axis=1)
            glob[:, j] = _kabsch(x[None], y, centre=False)
        elif ch:
            glob[:, j] = rotation_between(g0 @ plan.child_vec[ch[0]], cur[ch[0]]) @ g0
        else:
            glob[:, j] = g0
    src_pos = np.full((n_t, N_BODY_JOINTS, 3), np.nan)
    for j, s in src.items():
        src_pos[:, j] = p_src[:, s]
    bones = tuple((c, a) for c, a in sorted(anc.items()) if rest_len[c] >= MIN_BONE_M)
    return Retargeted(
        rotations=local_from_global(glob),
        transl=p_src[:, src[0]].copy(),
        offsets=plan.offsets,
        source_positions=src_pos,
        bones=bones,
        fps=motion.fps,
    )


@dataclass(frozen=True)
class _Plan:
    """Per-clip constants: rest corrections (3,3), child bone vectors (3,) in the canonical
    parent frame, joints solved by Kabsch, and the (22,3) bone table."""

    corr: dict[int, np.ndarray]
    child_vec: dict[int, np.ndarray]
    kabsch_joints: frozenset[int]
    offsets: np.ndarray


def _plan(
    spec: RetargetSpec,
    src: dict[int, int],
    anc: dict[int, int],
    children: dict[int, list[int]],
    rest: np.ndarray,
    rest_len: dict[int, float],
    g_src: np.ndarray,
    p_src: np.ndarray,
    skeleton: Skeleton,
) -> _Plan:
    w = np.asarray(spec.canonical_from_source, dtype=np.float64)
    legs = [BODY_JOINTS.index(n) for n in ("left_knee", "left_ankle", "right_knee", "right_ankle")]
    direct = [j for j in legs if anc.get(j) == BODY_PARENTS[j] and rest_len[j] >= MIN_BONE_M]
    leg_tpl = sum(float(np.linalg.norm(TEMPLATE_OFFSETS[j])) for j in direct)
    scale = sum(rest_len[j] for j in direct) / leg_tpl if leg_tpl > 0 else 1.0
    offsets = TEMPLATE_OFFSETS * scale
    rest_rot = {BODY_JOINTS.index(c): euler_to_rotmat("XYZ", np.array(e)) for c, e in spec.rest_rotations}
    twists = {BODY_JOINTS.index(c): t for c, t in spec.twists}
    tips = dict(spec.tips)
    leaf_tips = dict(LEAF_TIPS)
    corr: dict[int, np.ndarray] = {}
    child_vec: dict[int, np.ndarray] = {}
    kabsch_joints: set[int] = set()
    for j in sorted(src):
        ch = children[j]
        # Mean child vector in the source joint's own frame (canonical axes): its rigid shape.
        gt = np.swapaxes(g_src[:, src[j]], -1, -2)
        shape = {c: np.einsum("tab,tb->a", gt, p_src[:, src[c]] - p_src[:, src[j]]) / len(gt) for c in ch}
        tpl = {c: TEMPLATE_POSITIONS[c] - TEMPLATE_POSITIONS[j] for c in ch}
        multi = len(ch) >= 2 and not _collinear([shape[c] for c in ch])
        name = BODY_JOINTS[j]
        if j in rest_rot:
            corr[j] = (w @ rest_rot[j] @ w.T).T
        elif multi:
            corr[j] = _kabsch(np.stack([_unit(tpl[c]) for c in ch]), np.stack([_unit(shape[c]) for c in ch]), centre=False)
        elif ch:
            corr[j] = rotation_between(tpl[ch[0]], rest[src[ch[0]]] - rest[src[j]])
        elif name in tips and name in leaf_tips:
            corr[j] = rotation_between(
                np.array(leaf_tips[name]), rest[skeleton.index(tips[name])] - rest[src[j]]
            )
        else:
            corr[j] = corr[anc[j]] if j in anc else np.eye(3)
        if j in twists:
            axis = tpl[ch[0]] if ch else np.array(leaf_tips.get(name, (0.0, 1.0, 0.0)))
            corr[j] = corr[j] @ _axis_angle(axis, twists[j])
        if multi:
            kabsch_joints.add(j)
        for k, c in enumerate(ch):
            path = _chain(j, c)
            if multi or k > 0:
                child_vec[c] = corr[j].T @ shape[c]
                offsets[c] = child_vec[c] - offsets[path[:-1]].sum(axis=0)
            else:
                f = rest_len[c] / float(np.linalg.norm(tpl[c]))
                offsets[path] = TEMPLATE_OFFSETS[path] * f
                child_vec[c] = tpl[c] * f
    for c, a in anc.items():  # mapped joints the source places on their ancestor stay there
        if rest_len[c] < MIN_BONE_M:
            offsets[c] = -offsets[_chain(a, c)[:-1]].sum(axis=0)
    return _Plan(corr, child_vec, frozenset(kabsch_joints), offsets)


def bone_direction_errors(ret: Retargeted) -> np.ndarray:
    """Angle (degrees) between each reproduced canonical bone and the source bone, (T,B).

    Bones are `ret.bones` (mapped joint minus its nearest mapped ancestor); the canonical side
    is forward kinematics of `ret.rotations` with the clip's bone table.
    """
    joints = canonical_fk(ret.rotations, ret.transl, ret.offsets)
    child = np.array([c for c, _ in ret.bones], dtype=int)
    par = np.array([a for _, a in ret.bones], dtype=int)
    a = _unit(joints[:, child] - joints[:, par])
    b = _unit(ret.source_positions[:, child] - ret.source_positions[:, par])
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))
