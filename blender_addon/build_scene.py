"""Motion file -> Blender: armature, skinned mesh with shape keys, keyframes and camera.

``build_person`` fills (or refills in place) one collection per clip (the camera, the ground) with one
collection per person inside it (``<clip>_person_<id>``: an armature
with the rig's bones (Anny's 104, or SMPL-X's 55 joints by their SMPL-X names) and a mesh skinned to
it, plus one camera with the estimated intrinsics. Shape keys: one pair per Anny phenotype, or for the
SMPL family ``Shape000``... (one unit of each beta) and ``Exp000``... (SMPL-X expression, keyed per
frame); SMPL-X hands and jaw are ordinary bones with keyframes.
The armature object sits at the world origin (world: Z up, ground z = 0, subject facing -Y);
its rest pose is Anny's rest pose for the fitted shape lifted onto the ground, and the root
carries ``world_from_camera``. The math lives in ``rig_math`` (numpy); this module only talks
to bpy. Keys land on Blender frame ``frame_index + 1`` so that they line up with the footage, which
``footage`` puts behind the camera (with an optional ground plane).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from . import footage, keys, rig_math, scene_guard
from . import motion_data as md

log = logging.getLogger(__name__)

ROLE = "video2anim_role"
PERSON = "video2anim_person"
SOURCE = "video2anim_source"
_STILL = 1e-7
"""Largest quaternion change over the clip for a bone to count as still (keyed once)."""
_NO_LOCATION = 1e-5
"""Largest basis translation (m) of a non-root bone for its location to stay unkeyed."""

_NUMBERED = re.compile(r"\.\d{3}$")
"""The suffix Blender gives a new datablock whose name is taken."""


def clip_name(motion_path: str | Path) -> str:
    """``demo`` for ``.../demo.motion.npz``."""
    name = Path(motion_path).name
    return name.removesuffix(".npz").removesuffix(".motion")


def build_person(
    motion_file_path: str | Path,
    rig_npz_path: str | Path | None = None,
    collection_name: str | None = None,
    person_id: int | None = None,
    *,
    video_path: str | Path | None = None,
    movie_clip: bpy.types.MovieClip | None = None,
    ground_plane: bool = False,
) -> bpy.types.Object:
    """Import one person of a motion file into the current scene; return the armature object.

    Args:
        motion_file_path: ``.motion.npz`` written by the backend.
        rig_npz_path: rig file from ``backend.body.anny_rig``; None reads the rig stored in the
            motion file (``p{id}/rig/...``).
        collection_name: defaults to the clip's name; re-importing replaces this person's
            objects (and the camera and ground plane) in that collection instead of adding new ones.
        person_id: defaults to the first person in the file.
        video_path: the footage for the camera's background; None looks for ``meta.source_video``
            next to the motion file (and in its parent folder). No footage found: no background.
        movie_clip: footage already loaded in Blender (wins over ``video_path``).
        ground_plane: add a plane at z = 0 under the subject's path (``<clip>_ground``); any previous
            one in the collection is removed either way.
    """
    motion_path = Path(motion_file_path)
    clip, raw = md.read_motion(motion_path, person_id)  # the whole file is validated before the scene is touched
    rig = md.read_rig(rig_npz_path) if rig_npz_path is not None else md.embedded_rig(raw, motion_path)
    md.check_match(clip, rig)
    scene = bpy.context.scene
    name = collection_name or clip_name(motion_path)
    with scene_guard.unchanged_on_failure(scene):
        collection = _ensure_collection(scene, name)
        own = _ensure_child(collection, person_collection_name(name, clip.person_id))
        previous = _previous(collection, own, clip.person_id)
        made = _build(clip, rig, motion_path, name, (collection, own), video_path, movie_clip, ground_plane)
        _replace(previous, made)
    log.info("imported person %d of %s: %d frames", clip.person_id, motion_path, len(clip.frame_index))
    return made[0]


def _build(
    clip: md.PersonClip,
    rig: md.AnnyRig,
    motion_path: Path,
    name: str,
    collections: tuple[bpy.types.Collection, bpy.types.Collection],
    video_path: str | Path | None,
    movie_clip: bpy.types.MovieClip | None,
    ground_plane: bool,
) -> list[bpy.types.Object]:
    """Build the person's armature and mesh (in the person's own collection), the clip's camera (and the
    ground) in the clip's collection; return them, armature first."""
    scene = bpy.context.scene
    collection, own = collections
    base = f"{name}_p{clip.person_id}"
    lift = rig_math.ground_lift(rig["rest_vertices"])
    armature = _build_armature(rig, base, own, lift)
    mesh = _build_mesh(rig, base, own, lift, armature)
    for obj, role in ((armature, "armature"), (mesh, "mesh")):
        obj[ROLE], obj[PERSON], obj[SOURCE] = role, clip.person_id, str(motion_path)
    _animate(armature, clip, rig, lift, base)
    _animate_expression(mesh, clip, rig, base)
    _set_timing(scene, clip)
    camera = _build_camera(clip, name, collection)
    camera[ROLE], camera[SOURCE] = "camera", str(motion_path)
    scene.camera = camera
    made = [armature, mesh, camera]
    movie = footage.resolve_clip(clip, motion_path, video_path, movie_clip)
    if movie is not None:
        footage.set_camera_background(camera, movie, clip)
    if ground_plane:
        ground = footage.build_ground(clip, name, collection)
        ground[ROLE], ground[SOURCE] = "ground", str(motion_path)
        made.append(ground)
    scene.frame_set(int(clip.frame_index[0]) + 1)
    return made


# ---------------------------------------------------------------------- collection
def _ensure_collection(scene: bpy.types.Scene, name: str) -> bpy.types.Collection:
    collection = bpy.data.collections.get(name)
    if collection is None:
        collection = bpy.data.collections.new(name)
    if scene.collection.children.get(collection.name) is None:
        scene.collection.children.link(collection)
    layer = _find_layer_collection(bpy.context.view_layer.layer_collection, collection.name)
    if layer is not None:
        layer.exclude = False  # edit mode needs the armature in the view layer
    return collection


def person_collection_name(clip: str, person_id: int) -> str:
    """``demo_person_1``: the collection of one person's armature and mesh, inside the clip's."""
    return f"{clip}_person_{person_id}"


def _ensure_child(parent: bpy.types.Collection, name: str) -> bpy.types.Collection:
    """The collection ``name`` linked under ``parent`` (made if missing)."""
    child = bpy.data.collections.get(name)
    if child is None:
        child = bpy.data.collections.new(name)
    if parent.children.get(child.name) is None:
        parent.children.link(child)
    return child


def _find_layer_collection(layer: bpy.types.LayerCollection, name: str) -> bpy.types.LayerCollection | None:
    if layer.name == name:
        return layer
    for child in layer.children:
        found = _find_layer_collection(child, name)
        if found is not None:
            return found
    return None


def _previous(
    collection: bpy.types.Collection, own: bpy.types.Collection, person_id: int
) -> list[bpy.types.Object]:
    """This person's armature and mesh and the clip's camera and ground from an earlier import (files
    imported before people had collections of their own kept them in the clip's)."""
    objects = {obj.as_pointer(): obj for obj in (*collection.objects, *own.objects)}
    return [
        obj
        for obj in objects.values()
        if obj.get(ROLE) in ("camera", "ground")
        or (obj.get(ROLE) in ("armature", "mesh") and obj.get(PERSON) == person_id)
    ]


def _owned(obj: bpy.types.Object) -> list[bpy.types.ID]:
    """An imported object's datablocks: its data and actions (SMPL-X expression keys included)."""
    blocks: list[bpy.types.ID] = [] if obj.data is None else [obj.data]
    for holder in (obj, getattr(obj.data, "shape_keys", None)):
        anim = None if holder is None else holder.animation_data
        if anim is not None and anim.action is not None:
            blocks.append(anim.action)
    return blocks


def _replace(previous: list[bpy.types.Object], made: list[bpy.types.Object]) -> None:
    """Delete the earlier import's objects (with their data and actions), then give the new objects and
    their datablocks the names Blender had to suffix (``.001``) while the old ones existed."""
    wanted = [(block, _NUMBERED.sub("", block.name)) for obj in made for block in (obj, *_owned(obj))]
    doomed = {block.as_pointer(): block for obj in previous for block in (obj, *_owned(obj))}
    if doomed:
        bpy.data.batch_remove(list(doomed.values()))
    for block, name in wanted:
        if block.name != name:
            block.name = name
    bpy.context.view_layer.update()  # resync the view layer's object list after the removals


# ---------------------------------------------------------------------- armature
def _build_armature(
    rig: md.AnnyRig, base: str, collection: bpy.types.Collection, lift: np.ndarray
) -> bpy.types.Object:
    data = bpy.data.armatures.new(f"{base}_armature")
    obj = bpy.data.objects.new(f"{base}_armature", data)
    collection.objects.link(obj)
    labels, parents = rig.bone_labels, rig["bone_parents"]
    frames = lift @ rig["rest_poses"]
    lengths = rig["bone_lengths"]
    active = bpy.context.view_layer.objects.active
    if active is not None and active.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for label, frame, length in zip(labels, frames, lengths, strict=True):
            bone = data.edit_bones.new(label)
            bone.head = frame[:3, 3]
            bone.tail = frame[:3, 3] + float(length) * frame[:3, 1]
            bone.matrix = Matrix(frame.tolist())  # sets the roll; keeps head and length
            bones.append(bone)
        for bone, parent in zip(bones, parents, strict=True):
            if parent >= 0:
                bone.parent = bones[int(parent)]
                bone.use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    rest = np.array([np.array(data.bones[label].matrix_local) for label in labels])
    log.debug("armature rest frames match Anny's within %.2e", float(np.abs(rest - frames).max()))
    return obj


# ---------------------------------------------------------------------- mesh
def _build_mesh(
    rig: md.AnnyRig,
    base: str,
    collection: bpy.types.Collection,
    lift: np.ndarray,
    armature: bpy.types.Object,
) -> bpy.types.Object:
    verts = rig_math.apply(lift, rig["rest_vertices"]).astype(np.float32)
    faces = rig["faces"].astype(np.int32)
    mesh = bpy.data.meshes.new(f"{base}_body")
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, faces.shape[1], dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(faces), faces.shape[1], np.int32))
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", rig["uv"][rig["face_uv"].ravel()].astype(np.float32).ravel())
    mesh.update()
    if mesh.validate():
        log.warning("Blender corrected the body mesh on import (invalid geometry in the rig file)")
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), bool))
    obj = bpy.data.objects.new(f"{base}_body", mesh)
    collection.objects.link(obj)
    obj.parent = armature
    groups = [obj.vertex_groups.new(name=label) for label in rig.bone_labels]
    for bone, weight, members in rig_math.skin_groups(rig["skin_indices"], rig["skin_weights"]):
        groups[bone].add(members.tolist(), weight, "REPLACE")
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature
    obj.shape_key_add(name="Basis", from_mix=False)
    for label, targets in zip(rig.phenotype_labels, rig["phenotype_targets"], strict=True):
        for value, target in zip((0, 1), targets, strict=True):
            _add_shape_key(obj, f"{label}={value}", rig_math.apply(lift, target))
    # SMPL family: one key per beta direction (Shape000...) and per expression (Exp000..., keyed per frame).
    for labels, targets in (
        ("shape_key_labels", "shape_key_targets"),
        ("expression_labels", "expression_targets"),
    ):
        for label, target in zip(rig.labels(labels), rig.arrays.get(targets, ()), strict=True):
            _add_shape_key(obj, label, rig_math.apply(lift, target), signed=True)
    return obj


def _add_shape_key(obj: bpy.types.Object, name: str, coordinates: np.ndarray, signed: bool = False) -> None:
    """A shape key (value 0) holding vertex positions (V, 3); ``signed``: slider range -10..10 (betas and
    expression coefficients are signed; Blender clamps a key's value to its slider range)."""
    key = obj.shape_key_add(name=name, from_mix=False)
    key.data.foreach_set("co", coordinates.astype(np.float32).ravel())
    if signed:
        key.slider_min, key.slider_max = -10.0, 10.0
    key.value = 0.0


# ---------------------------------------------------------------------- animation
def _animate(
    armature: bpy.types.Object, clip: md.PersonClip, rig: md.AnnyRig, lift: np.ndarray, base: str
) -> None:
    deltas = rig_math.anny_deltas(clip.rig_pose, clip.transl)
    basis = rig_math.pose_basis(
        rig["rest_poses"], rig["reference_orientations"], rig["bone_parents"], deltas,
        clip.world_from_camera, lift,
    )  # fmt: skip
    location, quaternion = rig_math.matrix_to_location_quaternion(basis)  # (T, B, 3), (T, B, 4)
    frames = clip.frame_index.astype(np.float64) + 1.0
    new = keys.fcurve_factory(armature, bpy.data.actions.new(f"{base}_action"))
    for b, label in enumerate(rig.bone_labels):
        pose_bone = armature.pose.bones[label]
        pose_bone.rotation_mode = "QUATERNION"
        path = f'pose.bones["{bpy.utils.escape_identifier(label)}"]'
        moving = float(np.ptp(quaternion[:, b], axis=0).max()) > _STILL
        span = slice(None) if moving else slice(0, 1)
        keys.write_keys(new, f"{path}.rotation_quaternion", label, frames[span], quaternion[span, b])
        if b == 0 or float(np.abs(location[:, b]).max()) > _NO_LOCATION:
            keys.write_keys(new, f"{path}.location", label, frames, location[:, b])


def _animate_expression(mesh: bpy.types.Object, clip: md.PersonClip, rig: md.AnnyRig, base: str) -> None:
    """Key the ``Exp000``... shape keys with the motion's expression coefficients (SMPL-X)."""
    labels = rig.labels("expression_labels")
    if clip.expression is None or not labels:
        return
    key = mesh.data.shape_keys
    new = keys.fcurve_factory(key, bpy.data.actions.new(f"{base}_expression"), id_type="KEY")
    frames = clip.frame_index.astype(np.float64) + 1.0
    for e, label in enumerate(labels):
        path = f'key_blocks["{bpy.utils.escape_identifier(label)}"].value'
        keys.write_keys(new, path, "expression", frames, clip.expression[:, e : e + 1])


def _set_timing(scene: bpy.types.Scene, clip: md.PersonClip) -> None:
    scene.render.fps, scene.render.fps_base = rig_math.blender_fps(clip.fps)
    scene.frame_start = int(clip.frame_index[0]) + 1
    scene.frame_end = int(clip.frame_index[-1]) + 1


# ---------------------------------------------------------------------- camera
def _build_camera(clip: md.PersonClip, name: str, collection: bpy.types.Collection) -> bpy.types.Object:
    width, height = clip.image_size
    lens = rig_math.camera_lens(clip.intrinsics, width, height)
    data = bpy.data.cameras.new(f"{name}_camera")
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = lens.sensor_width_mm
    data.lens = lens.lens_mm
    data.shift_x, data.shift_y = lens.shift_x, lens.shift_y
    if abs(lens.pixel_aspect - 1.0) > 1e-3:
        log.warning("non-square pixels (fy/fx = %.4f) are not reproduced by the camera", lens.pixel_aspect)
    obj = bpy.data.objects.new(f"{name}_camera", data)
    collection.objects.link(obj)
    render = bpy.context.scene.render
    render.resolution_x, render.resolution_y = width, height
    matrix = rig_math.camera_matrix_world(clip.world_from_camera)
    if matrix.ndim == 2:
        obj.matrix_world = Matrix(matrix.tolist())
        return obj
    obj.rotation_mode = "QUATERNION"
    location, quaternion = rig_math.matrix_to_location_quaternion(matrix)
    new = keys.fcurve_factory(obj, bpy.data.actions.new(f"{name}_camera_action"))
    frames = clip.frame_index.astype(np.float64) + 1.0
    keys.write_keys(new, "location", "camera", frames, location)
    keys.write_keys(new, "rotation_quaternion", "camera", frames, quaternion)
    return obj
