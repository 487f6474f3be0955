"""DeepMimic humanoid motions (``cmu_deepmimic``).

Skeleton (``humanoid3d_skeleton.txt``, JSON): ``Skeleton.Joints`` with ``ID``, ``Name``,
``Type`` (none for the root, spherical, revolute, fixed), ``Parent`` and ``AttachX/Y/Z``
(offset from the parent, metres). Axes: y up, x forward, z to the character's right.

Motion (JSON): ``Frames``, each ``[duration, root position (3), root quaternion (w,x,y,z),
then per non-root joint in ID order: a quaternion (w,x,y,z) for a spherical joint, one angle
(radians, about the joint's z axis) for a revolute joint, nothing for a fixed joint]``.
The frame rate is 1 / the median frame duration (the last frame's duration is 0): 30 fps for
the CMU clips, 16 to 60 fps for some of the ``extra`` DeepMimic clips.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import roma
import torch

from backend.train.mocap.common import MocapFormatError, Motion, Skeleton

log = logging.getLogger(__name__)

SKELETON_FILE = "humanoid3d_skeleton.txt"
_WIDTH = MappingProxyType({"none": 0, "spherical": 4, "revolute": 1, "fixed": 0})  # numbers per joint


@dataclass(frozen=True)
class DeepMimicSkeleton:
    """skeleton: names, parents, offsets (m); types: per joint none|spherical|revolute|fixed."""

    skeleton: Skeleton
    types: tuple[str, ...]


def parse_skeleton(data: dict, source: str = "<skeleton>") -> DeepMimicSkeleton:
    """Parse the decoded ``humanoid3d_skeleton.txt`` JSON."""
    try:
        joints = sorted(data["Skeleton"]["Joints"], key=lambda j: int(j["ID"]))
        names = tuple(str(j["Name"]) for j in joints)
        parents = tuple(int(j["Parent"]) for j in joints)
        offsets = np.array([[float(j["AttachX"]), float(j["AttachY"]), float(j["AttachZ"])] for j in joints])
        types = tuple(str(j["Type"]).lower() for j in joints)
        thetas = [abs(float(j.get(f"AttachTheta{a}", 0.0))) for j in joints for a in "XYZ"]
    except (KeyError, TypeError, ValueError) as exc:
        raise MocapFormatError(f"{source}: malformed DeepMimic skeleton ({exc})") from exc
    if any(t not in _WIDTH for t in types):
        raise MocapFormatError(f"{source}: unknown joint type in {set(types)}")
    if max(thetas, default=0.0) > 1e-9:
        raise MocapFormatError(f"{source}: rotated joint attachments (AttachTheta) are not supported")
    if parents[0] != -1 or any(p >= i for i, p in enumerate(parents)):
        raise MocapFormatError(f"{source}: joints are not in parent-first order")
    return DeepMimicSkeleton(Skeleton(names, parents, offsets), types)


def _quat_wxyz_to_rotmat(q: np.ndarray) -> np.ndarray:
    qt = roma.quat_wxyz_to_xyzw(torch.as_tensor(q, dtype=torch.float64))
    return roma.unitquat_to_rotmat(roma.quat_normalize(qt)).numpy()


def parse_motion(data: dict, dm: DeepMimicSkeleton, source: str = "<motion>") -> Motion:
    """Parse a decoded DeepMimic motion JSON against its skeleton."""
    try:
        frames = np.array(data["Frames"], dtype=np.float64)
    except (KeyError, ValueError) as exc:
        raise MocapFormatError(f"{source}: malformed Frames ({exc})") from exc
    width = 1 + 3 + 4 + sum(_WIDTH[t] for t in dm.types[1:])
    if frames.ndim != 2 or frames.shape[1] != width or len(frames) < 1:
        raise MocapFormatError(f"{source}: frames of shape {frames.shape}, expected (T, {width})")
    n_t, n_j = len(frames), len(dm.types)
    rot = np.broadcast_to(np.eye(3), (n_t, n_j, 3, 3)).copy()
    rot[:, 0] = _quat_wxyz_to_rotmat(frames[:, 4:8])
    col = 8
    for j, kind in enumerate(dm.types[1:], start=1):
        if kind == "spherical":
            rot[:, j] = _quat_wxyz_to_rotmat(frames[:, col : col + 4])
        elif kind == "revolute":
            angle = frames[:, col]
            rot[:, j] = roma.rotvec_to_rotmat(
                torch.as_tensor(angle[:, None] * np.array([0.0, 0.0, 1.0]))
            ).numpy()
        col += _WIDTH[kind]
    durations = frames[:-1, 0] if n_t > 1 else frames[:, 0]
    durations = durations[durations > 0]
    if durations.size == 0:
        raise MocapFormatError(f"{source}: no positive frame duration")
    fps = 1.0 / float(np.median(durations))
    return Motion(root_positions=frames[:, 1:4].copy(), rotations=rot, fps=fps)


def find_skeleton(motion_path: Path) -> Path:
    """``humanoid3d_skeleton.txt`` in the motion's folder or the nearest parent folder."""
    for folder in [motion_path.parent, *motion_path.parents]:
        cand = folder / SKELETON_FILE
        if cand.exists():
            return cand
    raise MocapFormatError(f"{motion_path}: no {SKELETON_FILE} found above it")


def load_deepmimic(path: str | Path, skeleton_path: str | Path | None = None) -> tuple[Skeleton, Motion]:
    """Load a DeepMimic motion; skeleton_path None searches upwards (`find_skeleton`)."""
    path = Path(path)
    skeleton_path = Path(skeleton_path) if skeleton_path is not None else find_skeleton(path)
    try:
        dm = parse_skeleton(json.loads(skeleton_path.read_text()), str(skeleton_path))
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MocapFormatError(f"{path}: not JSON ({exc})") from exc
    return dm.skeleton, parse_motion(data, dm, str(path))
