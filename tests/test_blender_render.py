"""The add-on on a REAL motion file: the backend's output for 30 frames of the demo clip.

The backend's command line runs once per session (frames 30-60, preset fast, about 30 s on two
cores); the motion file is written next to a link to the demo video, as the panel's output would
be. Blender then has to reproduce the file's world keypoints from its own skinning on every frame,
show the footage behind the imported camera, put the rendered body on the person and keep the
bone rotations through an FBX round trip (both presets). The slow test runs the backend through
the estimate operator.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from blender_addon import rig_math

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402  (ships with bpy)
from mathutils import Matrix  # noqa: E402

from blender_addon import api  # noqa: E402
from tests import assimp_reader  # noqa: E402
from tests import retarget_rigs as rr  # noqa: E402
from tests.bpy_helpers import body_mesh, evaluated_vertices  # noqa: E402

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "demo.mp4"
START, END = 30, 60
TORSO = (11, 12, 23, 24)
"""MediaPipe's shoulders and hips in ``keypoints2d``."""


@pytest.fixture(scope="module")
def demo_motion(tmp_path_factory) -> Path:
    """``demo.motion.npz`` for frames 30-59 of the demo clip, with ``demo.mp4`` beside it."""
    if not DEMO.is_file():
        pytest.skip("the demo clip is missing")
    folder = tmp_path_factory.mktemp("demo_motion")
    os.symlink(DEMO, folder / DEMO.name)
    out = folder / "demo.motion.npz"
    argv = [sys.executable, "-m", "backend", "estimate", str(DEMO), "--out", str(out), "--preset", "fast",
            "--start", str(START), "--end", str(END), "--device", "cpu"]  # fmt: skip
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def raw(demo_motion) -> dict[str, np.ndarray]:
    with np.load(demo_motion) as data:
        return {k[3:]: data[k] for k in data.files if k.startswith("p0/")}


@pytest.fixture(scope="module")
def imported(demo_motion):
    """The operator's import of the real file (by bl_idname), into an empty scene."""
    addon_utils.enable("blender_addon", default_set=True, handle_error=None)
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.video2anim.import_motion(filepath=str(demo_motion)) == {"FINISHED"}
    yield bpy.context.view_layer.objects.active
    addon_utils.disable("blender_addon", default_set=True, handle_error=None)


def test_blender_reproduces_the_real_files_keypoints_on_every_frame(imported, raw) -> None:
    assert imported.type == "ARMATURE"
    body, frames = body_mesh(imported), raw["frame_index"]
    assert (frames[0], frames[-1]) == (START, END - 1)
    errors = []
    for t, frame in enumerate(frames):
        bpy.context.scene.frame_set(int(frame) + 1)
        kp = rig_math.regress_keypoints(
            evaluated_vertices(body), raw["rig/keypoint_vertices"], raw["rig/keypoint_weights"]
        )
        errors.append(np.linalg.norm(kp - raw["keypoints3d_world"][t], axis=-1).max())
    log.info("real demo file: Blender FK keypoint error max %.3f mm, mean of per-frame max %.3f mm",
             1e3 * max(errors), 1e3 * float(np.mean(errors)))  # fmt: skip
    assert max(errors) < 0.01, np.round(errors, 4)


def test_real_file_shape_keys_change_the_mesh(imported) -> None:
    keys = body_mesh(imported).data.shape_keys.key_blocks
    assert len(keys) == 13 and keys[0].name == "Basis"
    before = evaluated_vertices(body_mesh(imported))
    keys["weight=1"].value = 1.0
    try:
        after = evaluated_vertices(body_mesh(imported))
    finally:
        keys["weight=1"].value = 0.0
    assert np.linalg.norm(after - before, axis=-1).max() > 0.01


def test_camera_shows_the_footage_and_a_ground_plane_is_added(imported, demo_motion) -> None:
    camera = bpy.context.scene.camera
    assert camera is not None and camera.data.show_background_images
    (background,) = camera.data.background_images
    assert background.source == "MOVIE_CLIP" and not background.use_camera_clip
    clip = background.clip
    assert Path(bpy.path.abspath(clip.filepath)).name == "demo.mp4" and tuple(clip.size) == (1768, 994)
    assert (clip.frame_start, clip.frame_offset) == (1, 0)  # scene frame f + 1 shows video frame f
    grounds = [o for o in bpy.data.collections["demo"].objects if o.get("video2anim_role") == "ground"]
    assert len(grounds) == 1 and grounds[0].name == "demo_ground"
    corners = np.array([v.co[:] for v in grounds[0].data.vertices])
    assert np.abs(corners[:, 2]).max() < 1e-6 and np.ptp(corners[:, 0]) > 2.0
    counts = {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "movieclips", "cameras")}
    assert bpy.ops.video2anim.import_motion(filepath=str(demo_motion)) == {"FINISHED"}
    assert {k: len(getattr(bpy.data, k)) for k in counts} == counts  # replaced, not duplicated


def test_rendered_body_covers_the_detected_torso(imported, raw, tmp_path) -> None:
    """A Workbench render from the imported camera (transparent film) lies on the person's torso."""
    scene = bpy.context.scene
    for obj in list(bpy.data.collections["demo"].all_objects):  # a list: hide_render rebuilds the cache
        obj.hide_render = obj.get("video2anim_role") == "ground"
    scene.render.engine, scene.render.film_transparent = "BLENDER_WORKBENCH", True
    scene.render.resolution_percentage = 25
    scene.render.image_settings.color_mode = "RGBA"
    hits, total = 0, 0
    for t in (0, 15, 29):
        scene.frame_set(int(raw["frame_index"][t]) + 1)
        scene.render.filepath = str(tmp_path / f"frame_{t}.png")
        bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(scene.render.filepath)
        width, height = image.size
        alpha = np.array(image.pixels[:]).reshape(height, width, 4)[::-1, :, 3] > 0.5  # top row first
        for x, y, confidence in raw["keypoints2d"][t, TORSO]:
            if confidence < 0.5 or not raw["valid"][t]:
                continue
            col, row = int(x * width / 1768), int(y * height / 994)
            total += 1
            hits += bool(alpha[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3].any())
    log.info("torso keypoints on the rendered body: %d of %d", hits, total)
    assert total >= 6 and hits >= total - 1


# ---------------------------------------------------------------------- retarget (each builds its own scene)
def test_retarget_onto_a_mixamo_rig_with_other_proportions_and_rest_pose(demo_motion, tmp_path) -> None:
    """A T-pose, 15% larger, Mixamo-named rig with random bone rolls in FBX axes: wrists, ankles and head
    follow within 5% of limb length (in fact far closer), feet stay out of the floor, the rig's own
    action is kept, unmapped bones stay at rest, and its BVH reads back."""
    bvh = pytest.importorskip("bvh")
    bpy.ops.wm.read_homefile(use_empty=True)
    source = api.import_motion(demo_motion)
    target = rr.build_mixamo_rig(source, scale=1.15)
    own = bpy.data.actions.new("my_walk")
    target.animation_data_create().action = own
    result = api.retarget_motion(source, target)  # the map is detected from the bone names
    assert result.slots["hips"] == "mixamorig:Hips" and len(result.slots) == len(rr.maps.SLOTS)
    assert result.scale == pytest.approx(1.15, abs=1e-3) and result.frames == (START + 1, END)
    joints = {s: result.slots[s] for s in ("upper_arm.L", "forearm.L", "hand.L", "upper_arm.R", "forearm.R",
                                           "hand.R", "thigh.L", "shin.L", "foot.L", "thigh.R", "shin.R",
                                           "foot.R", "neck", "head")}  # fmt: skip
    errors, sink = rr.follow(source, target, joints, range(START + 1, END + 1))
    log.info("retarget onto Mixamo: effector error (share of limb length) max %s mean %s; ankle sink max %.2f mm",
             errors.max(0).round(4), errors.mean(0).round(4), 1000 * sink.max())  # fmt: skip
    assert errors.max() < 0.05 and errors[:, :4].max() < 0.005  # hands and feet: two-bone reach
    assert sink.max() < 1e-3
    assert own.name in bpy.data.actions and own.use_fake_user and target.animation_data.action.name == result.action
    assert target.pose.bones["mixamorig:Spine1"].matrix_basis == Matrix.Identity(4)
    path = api.export_bvh(target, tmp_path / "mixamo.bvh")
    assert set(bvh.Bvh(path.read_text()).get_joints_names()) == {b.name for b in target.data.bones}


def test_retarget_onto_a_generated_rigify_rig(demo_motion) -> None:
    """Rigify's FK controls are keyed and its limbs switched to FK; its deforming skeleton (ORG bones)
    follows the source within 5% of limb length although Rigify's proportions differ from Anny's."""
    bpy.ops.wm.read_homefile(use_empty=True)
    source = api.import_motion(demo_motion)
    target = rr.build_rigify_rig()
    result = api.retarget_motion(source, target, "rigify")
    assert result.slots["hips"] == "torso" and result.slots["hand.L"] == "hand_fk.L"
    org = {"upper_arm.L": "ORG-upper_arm.L", "forearm.L": "ORG-forearm.L", "hand.L": "ORG-hand.L",
           "upper_arm.R": "ORG-upper_arm.R", "forearm.R": "ORG-forearm.R", "hand.R": "ORG-hand.R",
           "thigh.L": "ORG-thigh.L", "shin.L": "ORG-shin.L", "foot.L": "ORG-foot.L", "thigh.R": "ORG-thigh.R",
           "shin.R": "ORG-shin.R", "foot.R": "ORG-foot.R", "neck": "ORG-spine.004", "head": "ORG-spine.006"}  # fmt: skip
    errors, sink = rr.follow(source, target, org, range(START + 1, END + 1, 3))
    log.info("retarget onto Rigify: scale %.3f, effector error max %s mean %s; ankle sink max %.2f mm",
             result.scale, errors.max(0).round(4), errors.mean(0).round(4), 1000 * sink.max())  # fmt: skip
    assert errors.max() < 0.05 and sink.max() < 1e-3
    assert target.pose.bones["thigh_parent.L"]["IK_FK"] == 1.0


def test_retarget_maps_operator_and_cancel_leave_the_rig_as_it_was(demo_motion, tmp_path) -> None:
    """A JSON map keys only its bones; a bad map or a cancel changes nothing; the operator reports."""
    from blender_addon import retarget
    from blender_addon.retarget_maps import BoneMapError

    bpy.ops.wm.read_homefile(use_empty=True)
    source = api.import_motion(demo_motion)
    target = rr.build_mixamo_rig(source, scale=0.9)
    target.pose.bones["mixamorig:LeftArm"].rotation_quaternion = (0.9, 0.1, 0.0, 0.0)
    before = {b.name: b.matrix_basis.copy() for b in target.pose.bones}
    actions = set(bpy.data.actions.keys())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hips": "mixamorig:Hips", "wing.L": "x"}))
    calls = iter(range(1000))
    attempts = (
        lambda: api.retarget_motion(source, target, str(bad)),  # an unknown slot
        lambda: api.retarget_motion(source, target, {"hips": "mixamorig:Hips"}),  # no hip joints
        lambda: retarget.retarget(source, target, "mixamo", cancelled=lambda: next(calls) > 20),  # mid-way
    )
    for attempt, error in zip(attempts, (BoneMapError, BoneMapError, retarget.RetargetCancelled), strict=True):
        with pytest.raises(error):
            attempt()
        assert set(bpy.data.actions.keys()) == actions
        assert target.animation_data is None or target.animation_data.action is None
        assert all(b.matrix_basis == before[b.name] for b in target.pose.bones)
    legs = tmp_path / "legs.json"
    legs.write_text(json.dumps({k: f"mixamorig:{v}" for k, v in rr.maps.MIXAMO.items() if k in
                                ("hips", "thigh.L", "thigh.R", "shin.L", "shin.R", "foot.L", "foot.R")}))  # fmt: skip
    addon_utils.enable("blender_addon", default_set=True, handle_error=None)
    try:
        settings = bpy.context.scene.video2anim
        settings.retarget_target, settings.bone_map, settings.bone_map_file = target, "json", str(legs)
        bpy.context.view_layer.objects.active = source
        assert bpy.ops.video2anim.retarget() == {"FINISHED"}
    finally:
        addon_utils.disable("blender_addon", default_set=True, handle_error=None)
    keyed = {c.data_path.split('"')[1] for c in _fcurves(target.animation_data.action)}
    assert keyed == {"mixamorig:" + b for b in ("Hips", "LeftUpLeg", "RightUpLeg", "LeftLeg", "RightLeg", "LeftFoot", "RightFoot")}


def _fcurves(action) -> list:
    if hasattr(action, "layers"):  # slotted actions (Blender 4.4+)
        return [c for layer in action.layers for strip in layer.strips for bag in strip.channelbags for c in bag.fcurves]
    return list(action.fcurves)


# ---------------------------------------------------------------------- FBX (last: they empty the scene)
def _deformations(armature, frames: list[int]) -> np.ndarray:
    """(F, B, 3, 3) world rotation each bone applies to the skin (posed @ rest^-1), per frame."""
    out = []
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        world = np.array(armature.matrix_world)
        mats = []
        for bone in armature.data.bones:
            posed = world @ np.array(armature.pose.bones[bone.name].matrix)
            rest = world @ np.array(bone.matrix_local)
            m = (posed @ np.linalg.inv(rest))[:3, :3]
            mats.append(m / np.linalg.norm(m, axis=0, keepdims=True))
        out.append(mats)
    return np.array(out)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (np.einsum("...ji,...ji->...", a, b) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_fbx_round_trip_keeps_the_bone_rotations(demo_motion, tmp_path, preset) -> None:
    """The real file's bone rotations survive export with each preset and Blender's FBX import."""
    from blender_addon.export import PRESETS

    bpy.ops.wm.read_homefile(use_empty=True)
    armature = api.import_motion(demo_motion)
    frames = [START + 1, START + 15, END]
    want = _deformations(armature, frames)
    names = [b.name for b in armature.data.bones]
    path = api.export_fbx(armature, tmp_path / f"demo_{preset}.fbx", preset)
    bpy.ops.wm.read_homefile(use_empty=True)
    axes = PRESETS[preset]
    # anim_offset=0: the importer would otherwise shift every key one frame later.
    bpy.ops.import_scene.fbx(
        filepath=str(path), axis_forward=axes.axis_forward, axis_up=axes.axis_up, anim_offset=0.0
    )
    imported = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    assert sorted(b.name for b in imported.data.bones) == sorted(names)  # no leaf bones added
    assert any(o.type == "MESH" and o.data.shape_keys for o in bpy.data.objects)
    got = _deformations(imported, frames)
    order = [imported.data.bones.find(n) for n in names]
    error = _angle_deg(want, got[:, order])
    log.info(
        "FBX %s round trip: bone rotation error max %.4f deg, mean %.4f deg",
        preset,
        error.max(),
        error.mean(),
    )
    assert error.max() < 1.0


def _influences(mesh: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """Per vertex: how many bone weights are above zero, and their sum."""
    groups = [[g.weight for g in v.groups if g.weight > 0.0] for v in mesh.data.vertices]
    return np.array([len(g) for g in groups]), np.array([sum(g) for g in groups])


def test_fbx_is_engine_clean_and_leaves_the_scene_alone(demo_motion, tmp_path) -> None:
    """At most 4 normalised weights per vertex and per-corner normals in the file, the take named after the
    action; the scene's own mesh (up to 9 weights), its name and its datablocks are untouched."""
    bpy.ops.wm.read_homefile(use_empty=True)
    armature = api.import_motion(demo_motion)
    mesh = next(c for c in armature.children if c.type == "MESH")
    count_before, _ = _influences(mesh)
    assert count_before.max() > 4  # Anny's skin: the export has something to do
    blocks = {k: len(getattr(bpy.data, k)) for k in ("meshes", "shape_keys", "actions", "objects")}
    path = api.export_fbx(armature, tmp_path / "demo.fbx", "unreal")
    assert np.array_equal(_influences(mesh)[0], count_before) and mesh.data.normals_domain == "POINT"
    assert {k: len(getattr(bpy.data, k)) for k in blocks} == blocks and bpy.context.scene.name == "Scene"
    data = path.read_bytes()
    assert b"ByPolygonVertex" in data and b"ByVertice" not in data
    assert armature.animation_data.action.name.encode() + b"\x00\x01AnimStack" in data  # the take's name
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path))
    count, total = _influences(next(o for o in bpy.data.objects if o.type == "MESH"))
    assert count.max() == 4 and np.abs(total - 1.0).max() < 1e-4


@pytest.mark.parametrize(("preset", "up", "forward", "height"), [("unity", 1, 2, (1.0, 2.0)), ("unreal", 2, 0, (100.0, 200.0))])
def test_fbx_reads_back_in_assimp(demo_motion, tmp_path, preset, up, forward, height) -> None:
    """Assimp (Debian's ``assimp``, a reader we did not write): every deforming bone, at most 4 normalised
    weights per vertex, a normal per vertex, the take named after the action with a key on every frame,
    and the body upright and facing the engine's forward axis in the reader's own world (node transforms
    applied, the file's axis settings ignored), in the engine's units."""
    if assimp_reader.assimp_command() is None:
        pytest.fail("the assimp command is missing: scripts/setup.sh dev installs Debian's assimp-utils")
    bpy.ops.wm.read_homefile(use_empty=True)
    armature = api.import_motion(demo_motion)
    path = api.export_fbx(armature, tmp_path / f"demo_{preset}.fbx", preset)
    got = assimp_reader.read_fbx(path, tmp_path)
    log.info("Assimp reads %s: %d bones, %d vertices, max %d weights, take %s %d frames, up %s forward %s height %.2f",
             preset, len(got.bones), got.vertices, got.max_weights_per_vertex, got.animation, got.frames,
             got.up.round(3), got.forward.round(3), got.height)  # fmt: skip
    deforming = {b.name for b in armature.data.bones if b.use_deform}
    assert got.bones <= deforming and len(got.bones) > 80
    assert got.max_weights_per_vertex <= 4 and got.weight_sum_error < 1e-3
    assert got.normals == got.vertices > 10_000
    assert got.animation == armature.animation_data.action.name and got.frames == got.keys_per_channel == END - START
    assert got.up[up] > 0.9 and got.forward[forward] > 0.9 and height[0] < got.height < height[1]


def _bvh_positions(mocap, frame: int) -> dict[str, np.ndarray]:
    """Every joint's position on ``frame`` by forward kinematics of a BVH read by the ``bvh`` package:
    position channels replace the OFFSET; rotation channels compose in the order they are listed."""
    from scipy.spatial.transform import Rotation

    out, world = {}, {}
    for name in mocap.get_joints_names():
        channels = mocap.joint_channels(name)
        values = dict(zip(channels, mocap.frame_joint_channels(frame, name, channels), strict=True))
        local = np.eye(4)
        axes = [c[0] for c in channels if c.endswith("rotation")]
        if axes:
            angles = [values[f"{a}rotation"] for a in axes]
            local[:3, :3] = Rotation.from_euler("".join(axes).upper(), angles, degrees=True).as_matrix()
        local[:3, 3] = [values[f"{a}position"] for a in "XYZ"] if "Xposition" in values else mocap.joint_offset(name)
        parent = mocap.joint_parent(name)
        world[name] = (world[parent.name] if parent is not None and parent.name in world else np.eye(4)) @ local
        out[name] = world[name][:3, 3]
    return out


def test_bvh_export_reads_back_in_an_independent_reader(demo_motion, tmp_path) -> None:
    """The BVH of the imported armature, read by the ``bvh`` package: every bone, every keyed frame at the
    clip's rate, and joints where Blender has them (forward kinematics of the file, within 1 mm)."""
    bvh = pytest.importorskip("bvh")
    bpy.ops.wm.read_homefile(use_empty=True)
    armature = api.import_motion(demo_motion)
    path = api.export_bvh(armature, tmp_path / "demo.bvh")
    mocap = bvh.Bvh(path.read_text())
    assert set(mocap.get_joints_names()) == {b.name for b in armature.data.bones}
    first, last = (int(round(f)) for f in armature.animation_data.action.frame_range)
    assert mocap.nframes == last - first + 1 == END - START
    assert mocap.frame_time == pytest.approx(1.0 / bpy.context.scene.render.fps, abs=1e-6)
    for k in (0, 12, mocap.nframes - 1):
        bpy.context.scene.frame_set(first + k)
        got = _bvh_positions(mocap, k)
        for name in ("foot.L", "foot.R", "head", "hand.L", "root"):
            if name in armature.pose.bones:
                assert np.linalg.norm(got[name] - np.array(armature.pose.bones[name].head)) < 1e-3, (k, name)


# ---------------------------------------------------------------------- the real backend
@pytest.mark.slow
def test_real_backend_on_the_demo_clip_through_the_operator(tmp_path) -> None:
    """The operator runs the repository's backend (.venv) on 30 frames of the demo clip."""
    if not (ROOT / ".venv" / "bin" / "python").is_file():
        pytest.skip("needs the repository's .venv (./run_tests.sh sets it up)")
    addon_utils.enable("blender_addon", default_set=True, handle_error=None)
    try:
        bpy.ops.wm.read_homefile(use_empty=True)
        settings = bpy.context.scene.video2anim
        settings.source, settings.filepath = "FILE", str(ROOT / "demo" / "demo.mp4")
        settings.use_range, settings.frame_start, settings.frame_end = True, 1, 30
        settings.preset, settings.output_dir = "fast", str(tmp_path)
        clock = time.monotonic()
        assert bpy.ops.video2anim.estimate() == {"FINISHED"}
        log.info("demo clip, 30 frames, fast preset: %.1f s", time.monotonic() - clock)
        armature = bpy.context.view_layer.objects.active
        assert armature.type == "ARMATURE" and armature.users_collection[0].name == "demo_person_0"
        assert bpy.context.scene.frame_end - bpy.context.scene.frame_start == 29
        (background,) = bpy.context.scene.camera.data.background_images  # the video the panel used
        assert Path(bpy.path.abspath(background.clip.filepath)) == DEMO
        shutil.copy(settings.log_path, tmp_path / "kept.log")
    finally:
        addon_utils.disable("blender_addon", default_set=True, handle_error=None)


def test_scene_cli_writes_blend_and_fbx(demo_motion: Path, tmp_path: Path) -> None:
    from blender_addon import scene_cli

    out = tmp_path / "made" / "demo"
    assert scene_cli.main([str(demo_motion), "--blend", f"{out}.blend", "--fbx", f"{out}.fbx"]) == 0
    assert Path(f"{out}.blend").stat().st_size > 100_000 and Path(f"{out}.fbx").stat().st_size > 100_000
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo.blend", "demo.fbx"]  # no temporary leftovers
    assert (
        scene_cli.main(
            [str(tmp_path / "missing.motion.npz"), "--blend", f"{out}2.blend", "--fbx", f"{out}2.fbx"]
        )
        == 2
    )


def test_foot_lock_eases_the_correction_not_the_spot() -> None:
    """Around a locked run the target is the foot's own path plus a fading share of the run's edge
    correction: a foot that lifts off fast right after its run keeps its lift (it used to be pulled
    two thirds of the way back to where it stood: 6 cm on the demo's star jumps)."""
    from blender_addon import foot_lock

    z = np.array([0.0, 0.0, 0.0, 0.001, 0.0, 0.002, 0.004, 0.10, 0.20, 0.30])  # planted 2-6, then off
    positions = np.stack([np.zeros(10), np.zeros(10), z], -1)
    planted = np.array([False, False, True, True, True, True, True, False, False, False])
    targets = foot_lock.locked_targets(positions, planted)
    spot = z[2:7].mean()
    np.testing.assert_allclose(targets[2:7, 2], spot)
    edge = spot - z[6]
    np.testing.assert_allclose(targets[7:9, 2], z[7:9] + np.array([2 / 3, 1 / 3]) * edge)
    np.testing.assert_allclose(targets[9], positions[9])
    assert np.abs(targets[:, 2] - z).max() <= abs(edge) + 1e-12


def test_foot_lock_pins_planted_ankles(raw, demo_motion) -> None:
    """The foot lock holds each ankle still over runs of contact frames (the fit keeps them nearly still
    already) and changes nothing else."""
    from blender_addon import api, foot_lock

    bpy.ops.wm.read_homefile(use_empty=True)  # its own import: earlier tests may have replaced the scene
    armature = api.import_motion(demo_motion)
    frames = raw["frame_index"] + 1
    ankles = [armature.pose.bones["foot.L"], armature.pose.bones["foot.R"]]
    head = armature.pose.bones["head"]

    def paths() -> tuple[np.ndarray, np.ndarray]:
        out, heads = [], []
        for f in frames:
            bpy.context.scene.frame_set(int(f))
            out.append([list(armature.matrix_world @ b.head) for b in ankles])
            heads.append(list(armature.matrix_world @ head.head))
        return np.array(out), np.array(heads)

    before, head_before = paths()
    count = foot_lock.lock_feet(armature, str(demo_motion), int(armature["video2anim_person"]))
    after, head_after = paths()
    planted = np.stack([raw["contacts"][:, [0, 1]].max(1), raw["contacts"][:, [2, 3]].max(1)], 1) >= 0.5
    assert count == int(planted.sum())
    assert np.abs(head_after - head_before).max() < 1e-5  # the rest of the body is untouched
    for leg in range(2):
        runs = foot_lock.locked_targets(before[:, leg], planted[:, leg])
        held = planted[:, leg] & (np.abs(runs - before[:, leg]).sum(-1) > 0)
        if held.any():  # the ankle reaches its pinned spot (the leg is long enough: within 2 mm)
            assert np.linalg.norm(after[held, leg] - runs[held], axis=-1).max() < 2e-3
    assert np.linalg.norm(after - before, axis=-1).max() < 0.05  # a polish, not a new motion
