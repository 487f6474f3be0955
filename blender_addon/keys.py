"""Keyframes written in bulk on an object's action, for Blender's slotted actions (4.4+) and the legacy ones."""

from __future__ import annotations

from collections.abc import Callable

import bpy
import numpy as np

FCurveFactory = Callable[[str, int, str], "bpy.types.FCurve"]
"""``new(data_path, index, group)`` -> a new F-curve on the action."""


def fcurve_factory(obj: bpy.types.ID, action: bpy.types.Action, id_type: str = "OBJECT") -> FCurveFactory:
    """``new(data_path, index, group)`` for the action on ``obj`` (an object, or a shape-key
    datablock with ``id_type="KEY"``): slotted (Blender 4.4+) or legacy."""
    anim = obj.animation_data or obj.animation_data_create()
    if hasattr(action, "slots"):
        from bpy_extras import anim_utils

        slot = action.slots.new(id_type=id_type, name=obj.name)
        anim.action = action
        anim.action_slot = slot
        bag = anim_utils.action_ensure_channelbag_for_slot(action, slot)
        return lambda path, index, group: bag.fcurves.new(path, index=index, group_name=group)
    anim.action = action
    return lambda path, index, group: action.fcurves.new(path, index=index, action_group=group)


def write_keys(new: FCurveFactory, path: str, group: str, frames: np.ndarray, values: np.ndarray) -> None:
    """One F-curve per column of values (N, C), keyed at frames (N,) in bulk."""
    co = np.empty((len(frames), 2), np.float32)
    co[:, 0] = frames
    for index in range(values.shape[1]):
        curve = new(path, index, group)
        curve.keyframe_points.add(len(frames))
        co[:, 1] = values[:, index]
        curve.keyframe_points.foreach_set("co", co.ravel())
        curve.update()
