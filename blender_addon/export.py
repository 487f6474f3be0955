"""FBX export presets for game engines (data) and the one call that exports with them.

Both presets bake every frame of every bone (no simplification), skip leaf bones, keep deform
bones only, and export the armature with its skinned body (shape keys included: mesh modifiers
are not applied). They differ in axes and scale:

- ``unity``: Y up, -Z forward, scale applied to the objects (``FBX_SCALE_ALL``) so that the
  imported model has scale 1 in Unity.
- ``unreal``: Z up, -Y forward (Blender's own axes, which Unreal reads as is), unit scale
  written to the file (metres -> Unreal's centimetres).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import bpy

from .safe_files import atomic_target, check_outputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FbxPreset:
    """Keyword arguments of ``bpy.ops.export_scene.fbx`` that differ between engines."""

    label: str
    axis_forward: str
    axis_up: str
    apply_scale_options: str
    global_scale: float = 1.0
    apply_unit_scale: bool = True


COMMON = {
    "use_selection": True,
    "object_types": {"ARMATURE", "MESH"},
    "use_mesh_modifiers": False,
    "mesh_smooth_type": "FACE",
    "add_leaf_bones": False,
    "use_armature_deform_only": True,
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "armature_nodetype": "NULL",
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
    "path_mode": "AUTO",
    "use_metadata": True,
}
"""Settings shared by every preset."""

PRESETS: dict[str, FbxPreset] = {
    "unity": FbxPreset("Unity", axis_forward="-Z", axis_up="Y", apply_scale_options="FBX_SCALE_ALL"),
    "unreal": FbxPreset("Unreal", axis_forward="-Y", axis_up="Z", apply_scale_options="FBX_SCALE_NONE"),
}


def preset_kwargs(preset: str) -> dict[str, object]:
    """All the exporter's keyword arguments for a preset name (``unity`` or ``unreal``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown FBX preset {preset!r}; use one of {sorted(PRESETS)}")
    settings = asdict(PRESETS[preset])
    settings.pop("label")
    return COMMON | settings


def export_objects(armature: bpy.types.Object) -> list[bpy.types.Object]:
    """The armature and the meshes it deforms (its children)."""
    return [armature] + [child for child in armature.children if child.type == "MESH"]


def export_fbx(
    armatures: bpy.types.Object | Sequence[bpy.types.Object], path: str | Path, preset: str = "unity"
) -> Path:
    """Write the armature(s) and their meshes to ``path`` with a preset; the selection is restored.

    Raises:
        ValueError: not an armature, or an unknown preset; ``safe_files.OutputPathError`` (a ValueError)
            for a path that is a folder.
        RuntimeError: the exporter failed (an existing file at ``path`` is kept).
    """
    if isinstance(armatures, bpy.types.Object):
        armatures = [armatures]
    if not armatures or any(a.type != "ARMATURE" for a in armatures):
        raise ValueError("export_fbx needs armature objects (as imported by video2anim)")
    kwargs = preset_kwargs(preset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_outputs([path])
    view_layer = bpy.context.view_layer
    chosen = [obj for armature in armatures for obj in export_objects(armature)]
    before = [obj for obj in view_layer.objects if obj.select_get()]
    active = view_layer.objects.active
    try:
        for obj in before:
            obj.select_set(False)
        for obj in chosen:
            obj.select_set(True)
        view_layer.objects.active = chosen[0]
        with atomic_target(path, ".fbx") as tmp:  # an earlier file survives a failed export
            result = bpy.ops.export_scene.fbx(filepath=str(tmp), check_existing=False, **kwargs)
            if "FINISHED" not in result:
                raise RuntimeError(f"the FBX exporter did not write {path}")
    finally:
        for obj in chosen:
            obj.select_set(False)
        for obj in before:
            obj.select_set(True)
        view_layer.objects.active = active
    log.info("exported %s (%s preset, %d objects)", path, preset, len(chosen))
    return path
