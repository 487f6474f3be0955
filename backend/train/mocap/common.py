"""Types and kinematics shared by the motion-capture loaders.

Every loader returns a source `Skeleton` (joint names, parents, rest offsets in metres) and a
`Motion` (root positions, local rotations, fps) in the source's own axes and rest frames; the
retargeting step (`retarget.py`) maps them to the canonical skeleton.

Conventions: a joint's world transform is ``G_j = G_parent @ L_j`` and its world position is
``P_j = P_parent + G_parent @ t_j`` where ``t_j`` is the rest offset (or a per-frame local
translation when the source animates it) and ``L_j`` the local rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch


class MocapFormatError(ValueError):
    """A motion file that cannot be parsed; the message says which file and why."""


@dataclass(frozen=True)
class Skeleton:
    """A source skeleton in its rest pose (all local rotations identity).

    names: (J,) joint names, unique; end sites are named ``<parent>_end``.
    parents: (J,) parent index per joint, -1 for the root; parents precede children.
    offsets: (J,3) rest offset of each joint from its parent, in the parent's frame, metres.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray

    def index(self, name: str) -> int:
        """Index of joint `name` (KeyError when absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(name) from None

    def rest_positions(self) -> np.ndarray:
        """(J,3) joint positions in the rest pose, root at the origin, metres."""
        pos = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            if p >= 0:
                pos[j] = pos[p] + self.offsets[j]
        return pos


@dataclass(frozen=True)
class Motion:
    """Animation of a `Skeleton`, in the source's axes.

    root_positions: (T,3) root translation, metres.
    rotations: (T,J,3,3) local rotation of each joint relative to its rest frame.
    fps: frames per second.
    local_translations: (T,J,3) per-frame local translations (metres) for sources that animate
        non-root joint positions (6-channel BVH joints), else None (rest offsets are used).
    """

    root_positions: np.ndarray
    rotations: np.ndarray
    fps: float
    local_translations: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        """Seconds spanned by the frames, (T-1)/fps."""
        return max(self.n_frames - 1, 0) / self.fps


def euler_to_rotmat(order: str, angles_deg: np.ndarray) -> np.ndarray:
    """Intrinsic Euler angles to rotation matrices with roma.

    order: axes in the order they are listed, e.g. "ZYX" means ``Rz(a0) @ Ry(a1) @ Rx(a2)``
        (the BVH and ASF convention). angles_deg: (...,3) in degrees. Returns (...,3,3).
    """
    a = torch.as_tensor(np.asarray(angles_deg, dtype=np.float64))
    return roma.euler_to_rotmat(order.upper(), a, degrees=True).numpy()


def forward_kinematics(
    parents: tuple[int, ...] | np.ndarray,
    offsets: np.ndarray,
    rotations: np.ndarray,
    root_positions: np.ndarray,
    local_translations: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """World rotations and positions of every joint.

    parents: (J,); offsets: (J,3) or (T,J,3); rotations: (T,J,3,3) local; root_positions: (T,3);
    local_translations: optional (T,J,3) overriding offsets. Returns (G (T,J,3,3), P (T,J,3)).
    """
    n_t, n_j = rotations.shape[:2]
    trans = local_translations if local_translations is not None else np.broadcast_to(offsets, (n_t, n_j, 3))
    glob = np.empty_like(rotations)
    pos = np.empty((n_t, n_j, 3), dtype=rotations.dtype)
    for j, p in enumerate(parents):
        if p < 0:
            glob[:, j] = rotations[:, j]
            pos[:, j] = root_positions
        else:
            glob[:, j] = glob[:, p] @ rotations[:, j]
            pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", glob[:, p], trans[:, j])
    return glob, pos


def motion_world(skeleton: Skeleton, motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T,J,3,3) and positions (T,J,3) of a source motion, source axes, metres."""
    return forward_kinematics(
        skeleton.parents, skeleton.offsets, motion.rotations, motion.root_positions, motion.local_translations
    )


def rest_height(skeleton: Skeleton, up_axis: int) -> float:
    """Extent (metres) of the rest pose along the up axis: lowest to highest joint or end site.

    For a T-posed or A-posed skeleton this is close to stature minus the skull above the head
    joint (sources with a head-top end site give full stature).
    """
    pos = skeleton.rest_positions()[:, up_axis]
    return float(pos.max() - pos.min())
