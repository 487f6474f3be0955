"""The frame-by-frame Blender work of a retarget (bpy): read the source, pose and key the target.

``read_source`` and ``pose_target`` are generators that yield after every frame, so that the
operator can run them a few frames per timer tick without blocking Blender, and a script can simply
exhaust them (``retarget.retarget``). ``save`` / ``restore`` put the target back if a retarget fails
or is cancelled.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix

from . import keys
from . import retarget_maps as maps
from . import retarget_math as rm

FEET = ("foot.L", "foot.R", "toe.L", "toe.R")
FLOOR_TOLERANCE = 1e-4
"""Metres a foot joint may dip below its floor before the root is lifted."""


@dataclass(frozen=True)
class Motion:
    """The source over the frames, in world space: per slot (T, 3) joint, (T, 3) tail of the slot's last
    bone, (T, 3, 3) that bone's rotation."""

    heads: dict[str, np.ndarray]
    tails: dict[str, np.ndarray]
    rotations: dict[str, np.ndarray]


@dataclass(frozen=True)
class Plan:
    """Per slot (T, 3, 3) world rotation of the target bone; (T, 3) the root's head; per foot slot (T,)
    the lowest its joint may go (``retarget_math.foot_floor``)."""

    rotations: dict[str, np.ndarray]
    root: np.ndarray
    floors: dict[str, np.ndarray]


@dataclass(frozen=True)
class Keys:
    """Per slot (T, C) rotation values in the bone's own rotation mode, (T, 3) the root's location, and
    the largest floor lift (m)."""

    rotations: dict[str, np.ndarray]
    root_location: np.ndarray
    floor_lift: float


def _point(world: np.ndarray, p: object) -> np.ndarray:
    return (world @ np.array([*p, 1.0]))[:3]  # type: ignore[misc]


def rest(armature: bpy.types.Object, chains: Mapping[str, tuple[str, str]]) -> rm.RigRest:
    """The rest pose of ``chains`` (slot -> first, last bone) in world space."""
    world, bones = np.array(armature.matrix_world), armature.data.bones
    heads = {slot: _point(world, bones[first].head_local) for slot, (first, _) in chains.items()}
    tails = {slot: _point(world, bones[last].tail_local) for slot, (_, last) in chains.items()}
    rots = {slot: rm.normalised(world @ np.array(bones[last].matrix_local)) for slot, (_, last) in chains.items()}
    feet = [p[2] for s in FEET if s in chains for p in (heads[s], tails[s])]
    ground = min(feet) if feet else min(h[2] for h in heads.values())
    return rm.RigRest(heads, rots, rm.segment_directions(heads, tails), float(ground))


def read_source(
    armature: bpy.types.Object, chains: Mapping[str, tuple[str, str]], frames: range
) -> Generator[float, None, Motion]:
    """Evaluate ``armature`` on every frame; yields the share done, returns the :class:`Motion`."""
    scene, world = bpy.context.scene, np.array(armature.matrix_world)
    heads = {s: np.zeros((len(frames), 3)) for s in chains}
    tails = {s: np.zeros((len(frames), 3)) for s in chains}
    rots = {s: np.zeros((len(frames), 3, 3)) for s in chains}
    for t, frame in enumerate(frames):
        scene.frame_set(frame)
        for slot, (first, last) in chains.items():
            heads[slot][t] = _point(world, armature.pose.bones[first].head)
            tails[slot][t] = _point(world, armature.pose.bones[last].tail)
            rots[slot][t] = rm.normalised(world @ np.array(armature.pose.bones[last].matrix))
        yield (t + 1) / len(frames)
    return Motion(heads, tails, rots)


def depth(slot: str) -> int:
    """How many slots ``slot`` hangs from (``hips``: 0)."""
    n = 0
    while (parent := maps.SLOTS[slot]) is not None:
        slot, n = parent, n + 1
    return n


def rotation_channel(pose_bone: bpy.types.PoseBone) -> tuple[str, int]:
    """The bone's rotation property for its rotation mode and its number of values."""
    if pose_bone.rotation_mode == "QUATERNION":
        return "rotation_quaternion", 4
    if pose_bone.rotation_mode == "AXIS_ANGLE":
        return "rotation_axis_angle", 4
    return "rotation_euler", 3


def _set(pose_bone: bpy.types.PoseBone, rotation: np.ndarray, position: np.ndarray | None, world: np.ndarray) -> None:
    """Pose a bone to a world ``rotation`` (3, 3); at world ``position`` (3,) or where its parents put it."""
    u, _, vt = np.linalg.svd(rm.normalised(world).T @ rotation)
    m = np.eye(4)
    m[:3, :3] = u @ vt  # the nearest rotation: no scale creeps into the pose
    m[:3, 3] = np.array(pose_bone.matrix)[:3, 3] if position is None else _point(np.linalg.inv(world), position)
    pose_bone.matrix = Matrix(m)


def _below_floor(target: bpy.types.Object, slots: Mapping[str, str], floors: Mapping[str, np.ndarray], t: int) -> float:
    """How far (m) the target's foot joints are below their floor on frame ``t`` (0: none is)."""
    world = np.array(target.matrix_world)
    heights = {s: float(_point(world, target.pose.bones[slots[s]].head)[2]) for s in floors}
    return max([0.0] + [float(floors[s][t]) - z for s, z in heights.items()])


def pose_target(target: bpy.types.Object, slots: Mapping[str, str], plan: Plan) -> Generator[float, None, Keys]:
    """Pose the target on every frame of ``plan``, slot level by slot level (each level evaluated before
    the next, so constraint-driven controls work), lifting the root where a foot would go through the
    floor; yields the share done, returns the :class:`Keys` to write."""
    world, layer, frames = np.array(target.matrix_world), bpy.context.view_layer, len(plan.root)
    levels = [sorted(s for s in slots if depth(s) == d) for d in sorted({depth(s) for s in slots})]
    channels = {s: rotation_channel(target.pose.bones[b]) for s, b in slots.items()}
    out = {s: np.zeros((frames, n)) for s, (_, n) in channels.items()}
    location, lift_max, root = np.zeros((frames, 3)), 0.0, target.pose.bones[slots["hips"]]
    for t in range(frames):
        for level in levels:
            for slot in level:
                position = plan.root[t] if slot == "hips" else None
                _set(target.pose.bones[slots[slot]], plan.rotations[slot][t], position, world)
            layer.update()
        lift = _below_floor(target, slots, plan.floors, t)
        if lift > FLOOR_TOLERANCE:  # a foot below the floor: lift the whole body
            _set(root, plan.rotations["hips"][t], plan.root[t] + [0.0, 0.0, lift], world)
            lift_max = max(lift_max, lift)
        for slot, (prop, _) in channels.items():
            out[slot][t] = getattr(target.pose.bones[slots[slot]], prop)
        location[t] = root.location
        yield (t + 1) / frames
    for slot, (prop, _) in channels.items():
        if prop == "rotation_quaternion":  # one hemisphere from frame to frame
            q = out[slot]
            for t in range(1, frames):
                if np.dot(q[t], q[t - 1]) < 0.0:
                    q[t] = -q[t]
    return Keys(out, location, lift_max)


def write_action(target: bpy.types.Object, name: str, slots: Mapping[str, str], frames: range, baked: Keys) -> bpy.types.Action:
    """A new action on ``target`` with ``baked`` keyed on ``frames``; Rigify limbs switched to FK."""
    action = bpy.data.actions.new(name)
    new = keys.fcurve_factory(target, action)
    at = np.arange(frames.start, frames.stop, dtype=np.float64)
    for slot, bone in slots.items():
        path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"]'
        prop, _ = rotation_channel(target.pose.bones[bone])
        keys.write_keys(new, f"{path}.{prop}", bone, at, baked.rotations[slot])
        if slot == "hips":
            keys.write_keys(new, f"{path}.location", bone, at, baked.root_location)
    for bone in maps.RIGIFY_FK_SWITCHES:  # Rigify: the FK controls drive the limbs
        pose_bone = target.pose.bones.get(bone)
        if pose_bone is not None and "IK_FK" in pose_bone:
            pose_bone["IK_FK"] = 1.0
            keys.write_keys(new, f'pose.bones["{bone}"]["IK_FK"]', bone, at[:1], np.ones((1, 1)))
    return action


_BASIS = ("location", "rotation_quaternion", "rotation_euler", "rotation_axis_angle", "scale")


@dataclass(frozen=True)
class TargetState:
    """What a retarget changes on the target, to put back if it fails."""

    action: bpy.types.Action | None
    action_slot: object
    basis: dict[str, tuple[tuple[float, ...], ...]]
    switches: dict[str, float]


def save(target: bpy.types.Object) -> TargetState:
    """The target's action and pose, before a retarget."""
    anim = target.animation_data
    basis = {pb.name: tuple(tuple(getattr(pb, p)) for p in _BASIS) for pb in target.pose.bones}
    switches = {b: float(target.pose.bones[b]["IK_FK"]) for b in maps.RIGIFY_FK_SWITCHES
                if b in target.pose.bones and "IK_FK" in target.pose.bones[b]}  # fmt: skip
    slot = getattr(anim, "action_slot", None) if anim else None
    return TargetState(anim.action if anim else None, slot, basis, switches)


def restore(target: bpy.types.Object, state: TargetState, made: bpy.types.Action | None) -> None:
    """Put the target back as ``state`` recorded it; remove the action the retarget ``made``."""
    anim = target.animation_data
    if anim is not None:
        anim.action = state.action
        if state.action is not None and state.action_slot is not None and hasattr(anim, "action_slot"):
            anim.action_slot = state.action_slot
    if made is not None:
        bpy.data.actions.remove(made)
    for name, values in state.basis.items():
        for prop, value in zip(_BASIS, values, strict=True):
            setattr(target.pose.bones[name], prop, value)
    for name, value in state.switches.items():
        target.pose.bones[name]["IK_FK"] = value
    bpy.context.view_layer.update()
