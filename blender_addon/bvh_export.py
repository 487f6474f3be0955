"""BVH export of an imported armature's motion (Blender's own BVH writer, staged like every output).

The file holds the armature's whole bone hierarchy in armature space (Blender's axes: Z up, -Y the
way the subject first faces; metres), one line per frame of the armature's action, at the scene's frame
rate. Every bone that is not connected to its parent carries position channels (Anny's bones are not
connected: a position channel replaces the bone's OFFSET). To read it into Blender with the same axes,
import with Forward Y and Up Z.
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy

from .safe_files import atomic_target, check_outputs

log = logging.getLogger(__name__)


def action_frames(armature: bpy.types.Object) -> tuple[int, int]:
    """First and last keyed frame of the armature's action (the scene's range when it has none)."""
    anim = armature.animation_data
    if anim is not None and anim.action is not None:
        start, end = anim.action.frame_range
        return int(round(start)), int(round(end))
    scene = bpy.context.scene
    return scene.frame_start, scene.frame_end


def export_bvh(armature: bpy.types.Object, path: str | Path) -> Path:
    """Write ``armature``'s motion to ``path`` as BVH; the active object and the current frame are kept.

    Raises:
        ValueError: not an armature; ``safe_files.OutputPathError`` (a ValueError) for a path that is a
            folder. RuntimeError: the writer failed (an existing file at ``path`` is kept).
    """
    if armature is None or armature.type != "ARMATURE":
        raise ValueError("export_bvh needs an armature object (as imported by video2anim)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_outputs([path])
    start, end = action_frames(armature)
    view_layer = bpy.context.view_layer
    active, frame = view_layer.objects.active, bpy.context.scene.frame_current
    try:
        view_layer.objects.active = armature  # the writer exports the active armature
        with atomic_target(path, ".bvh") as tmp:
            result = bpy.ops.export_anim.bvh(
                filepath=str(tmp), check_existing=False, frame_start=start, frame_end=end,
                global_scale=1.0, rotate_mode="NATIVE", root_transform_only=False,
            )  # fmt: skip
            if "FINISHED" not in result:
                raise RuntimeError(f"the BVH writer did not write {path}")
    finally:
        view_layer.objects.active = active
        bpy.context.scene.frame_set(frame)
    log.info("exported %s (frames %d-%d, %d bones)", path, start, end, len(armature.data.bones))
    return path
