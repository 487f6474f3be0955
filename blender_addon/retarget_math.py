"""The numbers of a retarget (numpy, no ``bpy``): where each target bone points on each frame.

Both rigs are described in world space by a :class:`RigRest` per slot (see ``retarget_maps``): the
joint (head of the slot's first bone), the rest rotation of the bone that carries the slot's twist
(source) or is keyed (target), and the direction of the slot's segment (its joint -> the next slot's
joint, else the bone's own head -> tail). For each slot a constant *correction* turns the target's rest
bone so that its segment lies along the source's rest segment, with the twist measured against the
body's own axes (forward, left, up), so a different rest pose (A-pose / T-pose) or bone roll does not
show. On every frame the target bone takes the source bone's world rotation change on top of that, then
the smallest turn that lays it exactly along the source's posed segment. The root follows the source's
hip centre, scaled by the ratio of hip heights (the leg lengths) so that the feet stay on the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .retarget_maps import NEXT


@dataclass(frozen=True)
class RigRest:
    """A rig's rest pose per slot, in world space (metres, Z up).

    Attributes:
        heads: slot -> (3,) the slot's joint.
        rotations: slot -> (3, 3) rest rotation (columns: the bone's X, Y, Z axes) of the slot's bone.
        directions: slot -> (3,) unit direction of the slot's segment.
        ground: height of the lowest foot point (the floor the rig stands on at rest).
    """

    heads: dict[str, np.ndarray]
    rotations: dict[str, np.ndarray]
    directions: dict[str, np.ndarray]
    ground: float

    @property
    def hip_centre(self) -> np.ndarray:
        """(3,) the midpoint of the two hip joints."""
        return 0.5 * (self.heads["thigh.L"] + self.heads["thigh.R"])

    @property
    def ankle_height(self) -> float:
        """Height of the ankles (mean of the foot joints; the floor where the rig has no feet)."""
        ankles = [self.heads[s][2] for s in ("foot.L", "foot.R") if s in self.heads]
        return float(np.mean(ankles)) if ankles else self.ground


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` (..., 3) scaled to length 1 (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def segment_directions(
    heads: dict[str, np.ndarray], tails: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """slot -> unit (..., 3) direction from its joint to the next slot's joint (``NEXT``) where both are
    present, else to the tail of the slot's own bone (``tails``)."""
    out = {}
    for slot, head in heads.items():
        nxt = NEXT.get(slot)
        end = heads[nxt] if nxt in heads else tails[slot]
        out[slot] = unit(end - head)
    return out


def body_axes(rest: RigRest) -> np.ndarray:
    """(3, 3) the rig's body axes as columns (forward, left, up): up is world Z, left points from the
    right hip to the left one (made horizontal), forward = left x up."""
    up = np.array([0.0, 0.0, 1.0])
    left = rest.heads["thigh.L"] - rest.heads["thigh.R"]
    left = unit(left - left.dot(up) * up)
    return np.stack([np.cross(left, up), left, up], axis=1)


def frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(3, 3) orthonormal frame whose first column is ``primary`` and second lies in its plane with
    ``secondary`` (both (3,), not parallel)."""
    p = unit(primary)
    s = unit(secondary - secondary.dot(p) * p)
    return np.stack([p, s, np.cross(p, s)], axis=1)


def corrections(source: RigRest, target: RigRest) -> dict[str, np.ndarray]:
    """slot -> (3, 3) world rotation that lays the target's rest segment along the source's.

    The twist about the segment is fixed by the body axis most perpendicular to both rigs' segments
    (hips: up and left), so the result does not depend on either rig's bone rolls.
    """
    axes_s, axes_t = body_axes(source), body_axes(target)
    out = {}
    for slot in source.heads.keys() & target.heads.keys():
        if slot == "hips":
            f_s, f_t = frame(axes_s[:, 2], axes_s[:, 1]), frame(axes_t[:, 2], axes_t[:, 1])
        else:
            d_s, d_t = source.directions[slot], target.directions[slot]
            k = int(np.argmin(np.maximum(np.abs(axes_s.T @ d_s), np.abs(axes_t.T @ d_t))))
            f_s, f_t = frame(d_s, axes_s[:, k]), frame(d_t, axes_t[:, k])
        out[slot] = f_s @ f_t.T
    return out


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) the smallest rotation taking unit vectors ``a`` to ``b`` (..., 3)."""
    a, b = unit(a), unit(b)
    axis = np.cross(a, b)
    cos = np.sum(a * b, axis=-1)[..., None, None]
    k = np.zeros(axis.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k = k - np.swapaxes(k, -1, -2)
    eye = np.broadcast_to(np.eye(3), k.shape)
    out = eye + k + k @ k / np.maximum(1.0 + cos, 1e-9)
    # opposite vectors: a half turn about any axis perpendicular to a
    flip = cos[..., 0, 0] < -1.0 + 1e-9
    if np.any(flip):
        ref = np.where(np.abs(a[flip][:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        n = unit(np.cross(a[flip], ref))
        out[flip] = 2.0 * n[:, :, None] * n[:, None, :] - np.eye(3)
    return out


def target_rotations(
    deltas: np.ndarray, rest_direction: np.ndarray, posed_direction: np.ndarray,
    correction: np.ndarray, target_rest: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """(T, 3, 3) world rotation of one target bone per frame.

    Args:
        deltas: (T, 3, 3) the source bone's world rotation change from rest (posed @ rest^T).
        rest_direction: (3,) the source's rest segment direction.
        posed_direction: (T, 3) the source's posed segment direction.
        correction: (3, 3) from :func:`corrections`.
        target_rest: (3, 3) the target bone's rest world rotation.
    """
    rotated = deltas @ correction @ target_rest
    follow = swing(deltas @ rest_direction, posed_direction)
    return follow @ rotated


def two_bone_directions(
    source_upper: np.ndarray, source_reach: np.ndarray, source_length: float, upper: float, lower: float
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) unit directions of a target limb's upper and lower segments (lengths ``upper``, ``lower``)
    that put its end where the source's is relative to the limb's length.

    The source's limb reaches ``source_reach`` (T, 3) from its base (chain length ``source_length``) and
    its upper segment points along ``source_upper`` (T, 3), which fixes the plane the limb bends in; the
    target reaches the same vector scaled to its own chain length (law of cosines). With the same
    proportions this is the source's own directions; with others the wrist or ankle still lands where
    the source's does relative to the limb.
    """
    total = upper + lower
    reach = source_reach * (total / source_length)
    dist = np.linalg.norm(reach, axis=-1, keepdims=True)
    dist = np.clip(dist, abs(upper - lower) + 1e-6 * total, total * (1.0 - 1e-6))
    axis = unit(reach)
    bend = source_upper - np.sum(source_upper * axis, axis=-1, keepdims=True) * axis
    straight = np.linalg.norm(bend, axis=-1, keepdims=True) < 1e-9
    bend = np.where(straight, 0.0, unit(bend))
    cos = np.clip((upper**2 + dist**2 - lower**2) / (2.0 * upper * dist), -1.0, 1.0)
    up_dir = cos * axis + np.sqrt(1.0 - cos**2) * bend
    low_dir = unit(axis * dist - upper * up_dir)
    return up_dir, low_dir


def motion_scale(source: RigRest, target: RigRest) -> float:
    """Target hip height over the source's, both above their own ankles at rest (the ratio of leg
    lengths; the ankle is a joint of every rig, unlike the sole)."""
    return float((target.hip_centre[2] - target.ankle_height) / (source.hip_centre[2] - source.ankle_height))


def root_positions(
    source_hips: np.ndarray, source: RigRest, target: RigRest, root_rotations: np.ndarray,
    target_root_head: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """(T, 3) world position of the target root bone's head per frame.

    The target's hip centre moves as the source's (``source_hips`` (T, 3)) moves from the point at
    ankle height below its rest hip centre, scaled by :func:`motion_scale` (so a standing source keeps
    the target's ankles at their rest height); the root bone's head keeps its rest
    offset from the hip centre, turned with the root (``root_rotations`` (T, 3, 3) world, rest
    ``target.rotations["hips"]``; ``target_root_head`` (3,) its rest head).
    """
    scale = motion_scale(source, target)
    origin_s = np.array([*source.hip_centre[:2], source.ankle_height])
    origin_t = np.array([*target.hip_centre[:2], target.ankle_height])
    hips = origin_t + scale * (source_hips - origin_s)
    turn = root_rotations @ target.rotations["hips"].T
    return hips + turn @ (target_root_head - target.hip_centre)


def foot_floor(source_heights: np.ndarray, source: RigRest, target: RigRest) -> np.ndarray:
    """(T,) the lowest a target foot joint may go: the source's same joint's height (``source_heights``
    (T,)) above the source's ankles at rest, scaled by :func:`motion_scale`, above the target's ankles.
    A target with other leg proportions would otherwise push a foot through the floor."""
    return target.ankle_height + motion_scale(source, target) * (source_heights - source.ankle_height)


def normalised(m: np.ndarray) -> np.ndarray:
    """The rotation part of (..., 4, 4) or (..., 3, 3) matrices with their columns scaled to unit length."""
    r = m[..., :3, :3]
    return r / np.linalg.norm(r, axis=-2, keepdims=True)
