"""FBX export presets for game engines (data) and the one call that exports with them.

Both presets bake every frame of every bone (no simplification), skip leaf bones, keep deform
bones only, and export the armature with its skinned body (shape keys included: mesh modifiers
are not applied). They differ in axes and scale:

- ``unity``: Y up, -Z forward, scale applied to the objects (``FBX_SCALE_ALL``) so that the
  imported model has scale 1 in Unity.
- ``unreal``: Z up and the body facing +X (Unreal's forward axis), centimetres. Blender's exporter
  puts the turn (90 degrees about Z) and the scale (100) on the file's top-level nodes and writes the
  matching axis settings, so readers that apply the axis settings and readers that ignore them both
  see the body upright, facing +X, in centimetres (checked with Assimp in the tests). A body facing
  +X is what Unreal's importer expects with "Convert Scene" on.
- The ``unity`` file faces +Z with Y up (Unity's forward and up), in metres.

For engines, every exported mesh is a temporary copy (the scene's own meshes are not touched) with at
most ``MAX_INFLUENCES`` bone weights per vertex, the largest kept and normalised to sum to 1 (engines
keep 4 and would drop the rest unnormalised), and normals stored per face corner (the exporter then
writes them ``ByPolygonVertex``, which every reader takes; ``ByVertice`` is refused by older Assimp).
The file's animation take is named after the armature's action, not the scene.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import bpy

from .safe_files import atomic_target, check_outputs

log = logging.getLogger(__name__)
MAX_INFLUENCES = 4
"""Bone weights kept per vertex (Unity's and Unreal's default skinning quality)."""


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
    "unreal": FbxPreset("Unreal", axis_forward="-X", axis_up="Z", apply_scale_options="FBX_SCALE_NONE"),
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


def limit_influences(obj: bpy.types.Object, limit: int = MAX_INFLUENCES) -> int:
    """Keep each vertex's ``limit`` largest deform weights of mesh ``obj`` (renormalised to sum to 1);
    returns how many vertices had more."""
    groups = obj.vertex_groups
    changed = 0
    for vertex in obj.data.vertices:
        weights = sorted(((g.weight, g.group) for g in vertex.groups if g.weight > 0.0), reverse=True)
        if len(weights) <= limit and abs(sum(w for w, _ in weights) - 1.0) < 1e-4:
            continue
        kept, dropped = weights[:limit], weights[limit:]
        changed += bool(dropped)
        for _, group in dropped:
            groups[group].remove([vertex.index])
        total = sum(w for w, _ in kept)
        for weight, group in kept:
            groups[group].add([vertex.index], weight / total if total > 0 else 0.0, "REPLACE")
    return changed


@contextlib.contextmanager
def engine_meshes(meshes: Sequence[bpy.types.Object]) -> Iterator[None]:
    """While open, each mesh object shows a copy of its mesh with at most ``MAX_INFLUENCES`` weights
    per vertex and per-corner normals; the original meshes come back (untouched) on exit."""
    swapped: list[tuple[bpy.types.Object, bpy.types.Mesh, bpy.types.Mesh]] = []
    try:
        for obj in meshes:
            original = obj.data
            copy = original.copy()
            obj.data = copy
            swapped.append((obj, original, copy))
            changed = limit_influences(obj)
            copy.normals_split_custom_set_from_vertices([v.normal[:] for v in copy.vertices])
            log.info("%s: %d vertices had more than %d bone weights", obj.name, changed, MAX_INFLUENCES)
        yield
    finally:
        for obj, original, copy in swapped:
            obj.data = original
            bpy.data.meshes.remove(copy)  # its shape keys go with it


@contextlib.contextmanager
def take_named(scene: bpy.types.Scene, name: str) -> Iterator[None]:
    """While open, the scene is called ``name`` (the FBX exporter names its animation take after it)."""
    before = scene.name
    scene.name = name
    try:
        yield
    finally:
        scene.name = before


def take_name(armature: bpy.types.Object) -> str:
    """The armature's action name (the clip's), else the armature's name."""
    anim = armature.animation_data
    return anim.action.name if anim is not None and anim.action is not None else armature.name


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
        meshes = [obj for obj in chosen if obj.type == "MESH"]
        with (
            atomic_target(path, ".fbx") as tmp,  # an earlier file survives a failed export
            engine_meshes(meshes),
            take_named(bpy.context.scene, take_name(armatures[0])),
        ):
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
