"""Retarget an imported motion onto the user's own armature and bake it to keyframes (bpy).

The source is an armature imported by video2anim (Anny or SMPL bones, animated); the target is any
humanoid armature with a bone map (``retarget_maps``: Rigify, Mixamo, Unreal Mannequin, or the user's
JSON). ``retarget_math`` says where each mapped target bone points on each frame; here the source is
read frame by frame, the target is posed slot level by slot level (a bone is set only once the bones
it hangs from are evaluated, so rigs with constraint-driven controls such as Rigify's work too), a foot
that would go below the floor lifts the root, and the result is keyed on a new action of the target.
The target's earlier action is kept (with a fake user) and nothing else of the scene changes; a failed
or cancelled retarget puts the target back as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import bpy
import numpy as np

from . import retarget_maps as maps
from . import retarget_math as rm
from . import retarget_pose as pose

log = logging.getLogger(__name__)
_R = TypeVar("_R")


class RetargetCancelled(RuntimeError):
    """The retarget was cancelled; the target is as it was."""


@dataclass(frozen=True)
class RetargetResult:
    """What a retarget did.

    Attributes:
        action: name of the new action on the target.
        frames: first and last keyed frame.
        slots: the slots that were keyed (target bone per slot).
        scale: the root motion's scale (target hip height over the source's).
        floor_lift: largest lift (m) applied to keep a foot above the floor.
    """

    action: str
    frames: tuple[int, int]
    slots: dict[str, str]
    scale: float
    floor_lift: float


def source_map(armature: bpy.types.Object) -> dict[str, tuple[str, str]]:
    """The source chains (``retarget_maps.SOURCES``) that ``armature``'s bones have.

    Raises:
        maps.BoneMapError: not an armature imported by video2anim (no known body's bones).
    """
    bones = armature.data.bones
    for chains in maps.SOURCES.values():
        if all(chains[slot][0] in bones for slot in maps.REQUIRED):
            return {slot: chain for slot, chain in chains.items() if chain[0] in bones and chain[1] in bones}
    raise maps.BoneMapError(f"{armature.name} is not a body imported by video2anim (Anny or SMPL bones)")


def target_map(armature: bpy.types.Object, bone_map: str | Path | Mapping[str, str] = "auto") -> dict[str, str]:
    """The slot -> bone map for ``armature``: ``"auto"`` (detected from its bone names), a built-in map's
    name (``rigify``, ``mixamo``, ``unreal``), a path to a JSON map, or a mapping.

    Raises:
        maps.BoneMapError: no map fits, an unknown name, or bones the rig lacks.
    """
    names = [b.name for b in armature.data.bones]
    if isinstance(bone_map, Mapping):
        chosen: Mapping[str, str] = bone_map
    elif str(bone_map) == "auto":
        found = maps.detect(names)
        if found is None:
            raise maps.BoneMapError(
                f"{armature.name}: no built-in bone map fits ({', '.join(maps.TARGETS)}); give a JSON bone map"
            )
        chosen = maps.TARGETS[found]
    elif str(bone_map) in maps.TARGETS:
        chosen = maps.TARGETS[str(bone_map)]
    elif str(bone_map).lower().endswith(".json"):
        chosen = maps.load_json(bone_map)
    else:
        raise maps.BoneMapError(f"unknown bone map {bone_map!r}: use auto, {', '.join(maps.TARGETS)} or a .json file")
    return maps.resolve(chosen, names)


_LIMBS = tuple((f"{a}.{s}", f"{b}.{s}", f"{c}.{s}") for s in maps.SIDES
               for a, b, c in (("upper_arm", "forearm", "hand"), ("thigh", "shin", "foot")))  # fmt: skip


def _limb_directions(source: pose.Motion, src_rest: rm.RigRest, tgt_rest: rm.RigRest) -> dict[str, np.ndarray]:
    """Per limb slot (T, 3) the posed directions that put the target's wrists and ankles where the source's
    are relative to limb length (``retarget_math.two_bone_directions``), for limbs both rigs have."""
    out = {}
    for base, middle, end in _LIMBS:
        if not all(s in tgt_rest.heads for s in (base, middle, end)):
            continue
        upper, lower = (float(np.linalg.norm(tgt_rest.heads[b] - tgt_rest.heads[a])) for a, b in ((base, middle), (middle, end)))
        reach = src_rest.heads[middle] - src_rest.heads[base], src_rest.heads[end] - src_rest.heads[middle]
        out[base], out[middle] = rm.two_bone_directions(
            source.heads[middle] - source.heads[base], source.heads[end] - source.heads[base],
            float(sum(np.linalg.norm(r) for r in reach)), upper, lower,
        )  # fmt: skip
    return out


def _plan(source: pose.Motion, src_rest: rm.RigRest, tgt_rest: rm.RigRest) -> pose.Plan:
    """Where every target bone points on every frame (``retarget_math``)."""
    fix = rm.corrections(src_rest, tgt_rest)
    posed_dirs = rm.segment_directions(source.heads, source.tails) | _limb_directions(source, src_rest, tgt_rest)
    rotations = {}
    for slot in tgt_rest.heads:
        deltas = source.rotations[slot] @ src_rest.rotations[slot].T
        rotations[slot] = rm.target_rotations(
            deltas, src_rest.directions[slot], posed_dirs[slot], fix[slot], tgt_rest.rotations[slot]
        )
    hips = 0.5 * (source.heads["thigh.L"] + source.heads["thigh.R"])
    root = rm.root_positions(hips, src_rest, tgt_rest, rotations["hips"], tgt_rest.heads["hips"])
    floors = {s: rm.foot_floor(source.heads[s][:, 2], src_rest, tgt_rest) for s in pose.FEET if s in tgt_rest.heads}
    return pose.Plan(rotations, root, floors)


def _share(steps: Generator[float, None, _R], offset: float, span: float) -> Generator[float, None, _R]:
    """``steps``' shares mapped to ``offset + span * share``; returns what ``steps`` returns."""
    while True:
        try:
            share = next(steps)
        except StopIteration as done:
            return done.value
        yield offset + span * share


def _frames(source: bpy.types.Object) -> range:
    anim = source.animation_data
    if anim is None or anim.action is None:
        raise maps.BoneMapError(f"{source.name} has no animation to retarget")
    start, end = (int(round(f)) for f in anim.action.frame_range)
    return range(start, end + 1)


def retarget_steps(
    source: bpy.types.Object, target: bpy.types.Object, bone_map: str | Path | Mapping[str, str] = "auto"
) -> Generator[float, None, RetargetResult]:
    """:func:`retarget` one frame at a time: yields the share done (0-1), returns the result. Closing the
    generator early puts the target back as it was (nothing is keyed).

    Raises (on the first step): maps.BoneMapError, as :func:`retarget`.
    """
    if source is None or target is None or source.type != "ARMATURE" or target.type != "ARMATURE":
        raise maps.BoneMapError("retarget needs two armatures: the imported body and your rig")
    if source == target:
        raise maps.BoneMapError("the source and the target are the same armature")
    chains, slots = source_map(source), target_map(target, bone_map)
    slots = {s: b for s, b in slots.items() if s in chains}
    chains = {s: chains[s] for s in slots}
    frames, scene = _frames(source), bpy.context.scene
    state, frame, made = pose.save(target), scene.frame_current, None
    try:
        motion = yield from _share(pose.read_source(source, chains, frames), 0.0, 0.3)
        src_rest, tgt_rest = pose.rest(source, chains), pose.rest(target, {s: (b, b) for s, b in slots.items()})
        if target.animation_data is not None:
            target.animation_data.action = None  # the frames below are posed by hand
        plan = _plan(motion, src_rest, tgt_rest)
        baked = yield from _share(pose.pose_target(target, slots, plan), 0.3, 0.7)
        made = pose.write_action(target, f"{source.animation_data.action.name}_{target.name}", slots, frames, baked)
    except BaseException:  # an error, or the generator closed (cancel): the target as it was
        pose.restore(target, state, made)
        scene.frame_set(frame)
        raise
    if state.action is not None:
        state.action.use_fake_user = True  # the target's earlier action stays in the file
    scene.frame_set(frame)
    result = RetargetResult(made.name, (frames.start, frames.stop - 1), slots, rm.motion_scale(src_rest, tgt_rest),
                            baked.floor_lift)  # fmt: skip
    log.info("retargeted %s -> %s: %d slots, %d frames, motion scale %.3f, largest floor lift %.1f mm",
             source.name, target.name, len(slots), len(frames), result.scale, 1000 * result.floor_lift)  # fmt: skip
    return result


def retarget(
    source: bpy.types.Object,
    target: bpy.types.Object,
    bone_map: str | Path | Mapping[str, str] = "auto",
    *,
    progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> RetargetResult:
    """Key ``source``'s motion (an armature imported by video2anim) onto ``target`` (any humanoid armature).

    Args:
        bone_map: see :func:`target_map`.
        progress: called with the share done (0-1) after each frame.
        cancelled: polled every frame; True stops the retarget (RetargetCancelled), the target unchanged.

    Raises:
        maps.BoneMapError (a ValueError): not two armatures, the source has no motion, or no bone map fits.
        RetargetCancelled: cancelled.
    """
    steps = retarget_steps(source, target, bone_map)
    try:
        while True:
            share = next(steps)
            if progress is not None:
                progress(share)
            if cancelled is not None and cancelled():
                steps.close()
                raise RetargetCancelled("retarget cancelled; the target is unchanged")
    except StopIteration as done:
        return done.value
