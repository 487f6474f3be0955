"""Foot lock: pin each ankle where the motion file says the foot is planted, by IK baked to keys (bpy).

The fit already keeps planted feet still; this pass removes what is left, on the armature itself
(or a rig the motion was retargeted to). For each leg: the ankle bone's world positions over the clip
(as animated), held at their mean over every run of contact frames (``contacts``: heel or toe), are
keyed on an empty; an IK constraint on the ankle's parent (the chain up to the hip) follows it; the
leg bones are baked to keyframes with visual keying, then the constraints and empties are removed.
``locked_targets`` is the numpy part.
"""

from __future__ import annotations

import logging

import bpy
import numpy as np

from . import motion_data as md

log = logging.getLogger(__name__)

LEGS = {  # ankle bone, hip bone (the top of the IK chain), contact columns (heel, toe)
    "left": (("foot.L", "left_ankle"), ("upperleg01.L", "left_hip"), (0, 1)),
    "right": (("foot.R", "right_ankle"), ("upperleg01.R", "right_hip"), (2, 3)),
}
CONTACT = 0.5
"""A foot is planted where its heel's or toe's contact probability reaches this."""
MIN_RUN = 3
"""Shorter runs of contact frames are not locked."""
BLEND = 2
"""Frames over which a target eases between following the foot and a locked spot."""


def locked_targets(positions: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """(T, 3) ankle targets: ``positions`` (T, 3), held at their mean over each run (at least
    ``MIN_RUN`` frames) of ``planted`` (T,) frames, eased in and out over ``BLEND`` frames.

    The easing fades the run's correction at its first / last frame (spot minus that frame's
    position), not the spot itself: a foot that lifts off fast right after a run keeps its own lift
    instead of being dragged back towards where it stood."""
    targets = positions.copy()
    weight = np.zeros(len(positions))
    t = 0
    while t < len(planted):
        if not planted[t]:
            t += 1
            continue
        end = t
        while end < len(planted) and planted[end]:
            end += 1
        if end - t >= MIN_RUN:
            spot = positions[t:end].mean(0)
            targets[t:end] = spot
            weight[t:end] = 1.0
            for k in range(1, BLEND + 1):  # ease out of and into the run
                w = 1 - k / (BLEND + 1)
                for frame, edge in ((t - k, t), (end - 1 + k, end - 1)):
                    if 0 <= frame < len(positions) and weight[frame] < w:
                        targets[frame] = positions[frame] + w * (spot - positions[edge])
                        weight[frame] = w
        t = end
    return targets


def _bone(armature: bpy.types.Object, names: tuple[str, ...]) -> bpy.types.PoseBone | None:
    return next((armature.pose.bones[n] for n in names if n in armature.pose.bones), None)


def _ankle_paths(armature: bpy.types.Object, ankles: list[bpy.types.PoseBone], frames: np.ndarray) -> np.ndarray:
    """(T, L, 3) world positions of the ankle bones' heads on ``frames``, as animated."""
    scene, out = bpy.context.scene, []
    for frame in frames:
        scene.frame_set(int(frame))
        out.append([list(armature.matrix_world @ bone.head) for bone in ankles])
    return np.array(out)


def lock_feet(armature: bpy.types.Object, motion_path: str, person_id: int) -> int:
    """Pin the armature's ankles on the planted frames of ``person_id`` in ``motion_path``; returns the
    number of ankle-frames locked. Raises MotionDataError without contacts or leg bones."""
    clip, raw = md.read_motion(motion_path, person_id)
    frames = clip.frame_index + 1  # Blender keys frame_index + 1 (build_scene)
    legs = [(side, _bone(armature, ankle), _bone(armature, hip), cols) for side, (ankle, hip, cols) in LEGS.items()]
    legs = [leg for leg in legs if leg[1] is not None and leg[2] is not None and leg[1].parent is not None]
    if not legs:
        raise md.MotionDataError(f"{armature.name} has no leg bones the foot lock knows (foot.L, left_ankle, ...).")
    planted = np.stack([raw["contacts"][:, list(cols)].max(1) >= CONTACT for *_, cols in legs], axis=1)
    paths = _ankle_paths(armature, [leg[1] for leg in legs], frames)
    made: list[bpy.types.ID] = []
    try:
        for i, (side, ankle, hip, _) in enumerate(legs):
            target = bpy.data.objects.new(f"{armature.name}_{side}_foot_lock", None)
            bpy.context.scene.collection.objects.link(target)
            made.append(target)
            for frame, spot in zip(frames, locked_targets(paths[:, i], planted[:, i]), strict=True):
                target.location = spot
                target.keyframe_insert("location", frame=int(frame))
            ik = ankle.parent.constraints.new("IK")
            ik.name, ik.target, ik.use_tail = "video2anim_foot_lock", target, True
            ik.chain_count = len(_chain(ankle.parent, hip))
        chains = {bone.name for _, ankle, hip, _ in legs for bone in _chain(ankle.parent, hip)}
        _bake(armature, chains, int(frames[0]), int(frames[-1]))
    finally:
        for bone in armature.pose.bones:
            for constraint in [c for c in bone.constraints if c.name.startswith("video2anim_foot_lock")]:
                bone.constraints.remove(constraint)
        if made:
            bpy.data.batch_remove(made)
    count = int(planted.sum())
    log.info("foot lock: %d ankle-frames pinned on %s", count, armature.name)
    return count


def _chain(bone: bpy.types.PoseBone, top: bpy.types.PoseBone) -> list[bpy.types.PoseBone]:
    """The bones from ``bone`` up to ``top`` inclusive (the IK chain; two bones if ``top`` is not above)."""
    chain, current = [], bone
    while current is not None:
        chain.append(current)
        if current == top:
            return chain
        current = current.parent
    return [bone, bone.parent] if bone.parent is not None else [bone]


def _bake(armature: bpy.types.Object, chains: set[str], start: int, end: int) -> None:
    """Bake the bones of the IK chains to keys with visual keying."""
    view_layer = bpy.context.view_layer
    active = view_layer.objects.active
    view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="POSE")
    try:
        for bone in armature.pose.bones:  # Blender 5 selects pose bones; 4.x bones
            holder = bone if hasattr(bone, "select") else bone.bone
            holder.select = bone.name in chains
        bpy.ops.nla.bake(frame_start=start, frame_end=end, only_selected=True, visual_keying=True,
                         clear_constraints=False, use_current_action=True, bake_types={"POSE"})  # fmt: skip
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = active
