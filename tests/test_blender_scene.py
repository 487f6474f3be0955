"""Blender import: a synthetic motion file with exact keypoints -> armature, mesh, keys, camera.

The motion file is written with the pipeline's own array layout (``pipeline.record.person_arrays``) from Anny
posed by random canonical rotations; the rig comes from ``backend.body.anny_rig``. Blender then has
to reproduce the file's world keypoints from its own skinning, per frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from backend.body.model import CanonicalPose, export_rig
from backend.geometry.skeleton import KEYPOINT_NAMES
from blender_addon import rig_math
from tests.conftest import recorded_arrays

bpy = pytest.importorskip("bpy")
from blender_addon import build_scene  # noqa: E402  (needs bpy)
from tests.bpy_helpers import body_mesh, evaluated_vertices  # noqa: E402

log = logging.getLogger(__name__)
T, WIDTH, HEIGHT, FIRST = 5, 1280, 720, 10
K = np.array([[1108.5, 0.0, 650.0], [0.0, 1108.5, 350.0], [0.0, 0.0, 1.0]])
PHENOTYPES = np.array([0.3, 0.6, 0.5, 0.4, 0.7, 0.5], np.float32)


@dataclass
class Clip:
    motion: Path
    rig: Path
    motion_with_rig: Path
    arrays: dict[str, np.ndarray]


def _track_and_fit(body):
    from backend.detect.types import SubjectTrack
    from backend.fit.optimize import FitResult

    gen = torch.Generator().manual_seed(0)
    upright = roma.rotvec_to_rotmat(torch.tensor([np.pi, 0.0, 0.0]))  # facing the camera, head up
    orient = roma.rotvec_to_rotmat(0.2 * torch.randn(T, 3, generator=gen)) @ upright
    pose = 0.25 * torch.randn(T, 21, 3, generator=gen)
    pose[:, 15, 2] -= 1.1  # arms down from the T-pose (left and right shoulder)
    pose[:, 16, 2] += 1.1
    transl = torch.tensor([0.05, 0.0, 3.5]) + 0.05 * torch.randn(T, 3, generator=gen)
    hands = 0.3 * torch.randn(T, 2, 15, 3, generator=gen)  # fingers away from rest
    rest = body.rest_state(torch.as_tensor(PHENOTYPES))
    hand_rot = roma.rotvec_to_rotmat(hands)
    with torch.no_grad():
        canonical = CanonicalPose(orient, roma.rotvec_to_rotmat(pose), transl, hand_rot[:, 0], hand_rot[:, 1])
        deltas = body.native_deltas(canonical)
        transforms = body.bone_transforms(deltas, rest)
        kp = body.keypoints(transforms, rest).numpy()
        parts = {"left_hand_pose": hands[:, 0].numpy(), "right_hand_pose": hands[:, 1].numpy(),
                 "hand_keypoints3d": body.hand_keypoints(transforms, rest).numpy()}  # fmt: skip
    projected = kp @ K.T
    fit = FitResult(
        global_orient=roma.rotmat_to_rotvec(orient).numpy(), body_pose=pose.numpy(),
        transl=transl.numpy(), phenotypes=PHENOTYPES, keypoints3d=kp,
        projected=projected[..., :2] / projected[..., 2:], native_pose=body.native_pose_rotvec(deltas), parts=parts,
    )  # fmt: skip
    zeros = np.zeros
    track = SubjectTrack(
        track_id=0, frame_index=np.arange(FIRST, FIRST + T), time_s=np.arange(T) / 25.0,
        valid=np.ones(T, bool), body2d=zeros((T, 33, 3)), body_world=zeros((T, 33, 3)),
        left_hand2d=zeros((T, 21, 3)), right_hand2d=zeros((T, 21, 3)), face2d=zeros((T, 468, 3)),
        bbox=zeros((T, 4)), silhouette=zeros((T, 64, 64), np.uint8),
    )  # fmt: skip
    return track, fit


@pytest.fixture(scope="module")
def clip(anny_body, tmp_path_factory) -> Clip:
    from backend.io import motion as motion_io

    folder = tmp_path_factory.mktemp("blender")
    track, fit = _track_and_fit(anny_body)
    embedded = recorded_arrays(track, fit, anny_body)
    arrays = {k: v for k, v in embedded.items() if not k.startswith("rig/")}
    meta = {
        "body_model": {"name": "anny", "bone_labels": anny_body.bone_labels,
                       "phenotype_labels": anny_body.phenotype_labels},
        "fps": 25.0, "frame_count": T, "image_size": [WIDTH, HEIGHT], "intrinsics": K.tolist(),
        "keypoint_names": {"keypoints3d": list(KEYPOINT_NAMES)},
    }  # fmt: skip
    motion = folder / "synthetic.motion.npz"
    motion_io.save(motion, motion_io.MotionFile(dict(meta), [motion_io.PersonMotion(0, arrays)]))
    rig = export_rig(anny_body, PHENOTYPES, folder / "synthetic.rig.npz")
    with_rig = folder / "embedded.motion.npz"
    motion_io.save(with_rig, motion_io.MotionFile(dict(meta), [motion_io.PersonMotion(0, embedded)]))
    return Clip(motion, rig, with_rig, arrays)


@pytest.fixture(scope="module")
def imported(clip):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return build_scene.build_person(clip.motion, clip.rig, "synthetic")




def test_numpy_rotations_match_roma() -> None:
    rotvec = torch.randn(50, 3, dtype=torch.float64) * 2.0
    rotvec[0] = 0.0
    rot = rig_math.rotvec_to_matrix(rotvec.numpy())
    assert np.allclose(rot, roma.rotvec_to_rotmat(rotvec).numpy(), atol=1e-12)
    quat = rig_math.matrix_to_quaternion(rot)
    want = roma.rotmat_to_unitquat(torch.as_tensor(rot)).numpy()[:, [3, 0, 1, 2]]
    assert np.allclose(quat, want * np.sign(want[:, :1] + 1e-12), atol=1e-9)


def test_rig_file_reproduces_the_keypoints_without_torch(clip) -> None:
    """Anny's FK and skinning redone in numpy from the rig + motion arrays hit the file's keypoints."""
    rig = np.load(clip.rig)
    deltas = rig_math.anny_deltas(clip.arrays["anny_pose"], clip.arrays["transl"])
    posed = rig_math.posed_frames(
        rig["rest_poses"], rig["reference_orientations"], rig["bone_parents"], deltas
    )
    skin = posed @ rig_math.rigid_inverse(rig["rest_poses"])  # (T, B, 4, 4)
    per_slot = skin[:, rig["skin_indices"].astype(np.int64)]  # (T, V, S, 4, 4)
    mix = np.einsum("vs,tvsij->tvij", rig["skin_weights"], per_slot)
    verts = np.einsum("tvij,vj->tvi", mix[..., :3, :3], rig["rest_vertices"]) + mix[..., :3, 3]
    kp = rig_math.regress_keypoints(verts, rig["keypoint_vertices"], rig["keypoint_weights"])
    assert np.abs(kp - clip.arrays["keypoints3d"]).max() < 1e-3


def test_imported_armature_reproduces_the_world_keypoints(clip, imported) -> None:
    rig = np.load(clip.rig)
    body = body_mesh(imported)
    want = clip.arrays["keypoints3d_world"]
    errors = []
    for t in range(T):
        bpy.context.scene.frame_set(FIRST + t + 1)
        kp = rig_math.regress_keypoints(
            evaluated_vertices(body), rig["keypoint_vertices"], rig["keypoint_weights"]
        )
        errors.append(np.linalg.norm(kp - want[t], axis=-1).max())
    log.info("Blender FK keypoint error per frame (m): %s", np.round(errors, 6))
    assert max(errors) < 0.01, errors
    assert want[..., 2].min() > -0.05  # the body stands on the ground (world z up)
    lift = rig_math.ground_lift(rig["rest_vertices"])
    rest = np.array([np.array(imported.data.bones[str(n)].matrix_local) for n in rig["bone_labels"]])
    assert np.abs(rest - lift @ rig["rest_poses"]).max() < 1e-4


def test_imported_fingers_follow_the_fitted_hands(anny_body, clip, imported) -> None:
    """The fitted finger rotations reach Blender: the skinned fingertips sit on the motion file's hand
    landmarks (world frame) on every frame, away from where a rest hand would put them."""
    body = body_mesh(imported)
    tips = anny_body.landmarks.tip_vertices.cpu().numpy()
    rows = anny_body.landmarks.tip_rows.cpu().numpy()
    hands = clip.arrays["keypoints3d_hands"].reshape(T, 42, 3)
    errors = []
    for t in range(T):
        bpy.context.scene.frame_set(FIRST + t + 1)
        world = clip.arrays["world_from_camera"]  # (4, 4) for a still camera, else (T, 4, 4)
        want = rig_math.apply(world if world.ndim == 2 else world[t], hands[t, rows].astype(np.float64))
        errors.append(np.linalg.norm(evaluated_vertices(body)[tips] - want, axis=-1).max())
    log.info("Blender fingertip error per frame (m): %s", np.round(errors, 6))
    assert max(errors) < 0.005
    assert np.abs(clip.arrays["left_hand_pose"]).max() > 0.1  # the fingers were posed


def test_shape_keys_one_pair_per_phenotype_and_they_change_the_mesh(imported) -> None:
    body = body_mesh(imported)
    keys = body.data.shape_keys.key_blocks
    labels = ("gender", "age", "muscle", "weight", "height", "proportions")
    assert [k.name for k in keys] == ["Basis"] + [f"{n}={v}" for n in labels for v in (0, 1)]
    before = evaluated_vertices(body)
    keys["height=1"].value = 1.0
    try:
        after = evaluated_vertices(body)
    finally:
        keys["height=1"].value = 0.0
    assert np.linalg.norm(after - before, axis=-1).max() > 0.01


def test_keyframes_timing_and_camera(clip, imported) -> None:
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (FIRST + 1, FIRST + T)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(25.0)
    curves = {(c.data_path, c.array_index): c for c in _fcurves(imported)}
    arm = curves[('pose.bones["upperarm01.L"].rotation_quaternion', 0)]
    assert len(arm.keyframe_points) == T
    assert len(curves[('pose.bones["root"].location', 2)].keyframe_points) == T
    assert len(curves[('pose.bones["finger2-2.L"].rotation_quaternion', 0)].keyframe_points) == T  # fitted
    assert len(curves[('pose.bones["eye.L"].rotation_quaternion', 0)].keyframe_points) == 1  # still: one key
    # The camera sees the world keypoints where the intrinsics put the camera-frame ones.
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    cam = scene.camera
    kp_cam = clip.arrays["keypoints3d"][0]
    px = kp_cam @ K.T
    px = px[:, :2] / px[:, 2:]
    for point, want in zip(clip.arrays["keypoints3d_world"][0], px, strict=True):
        ndc = world_to_camera_view(scene, cam, Vector(point.tolist()))
        assert (ndc.x * WIDTH, (1.0 - ndc.y) * HEIGHT) == pytest.approx(tuple(want), abs=0.5)


def _fcurves(obj):
    action = obj.animation_data.action
    if hasattr(action, "slots"):
        from bpy_extras import anim_utils

        return anim_utils.action_get_channelbag_for_slot(action, obj.animation_data.action_slot).fcurves
    return action.fcurves


def test_reimport_replaces_instead_of_duplicating(clip, imported) -> None:
    counts = {
        k: len(getattr(bpy.data, k))
        for k in ("objects", "meshes", "armatures", "cameras", "actions", "shape_keys")
    }
    again = build_scene.build_person(clip.motion, clip.rig, "synthetic")
    objects = bpy.data.collections["synthetic"].all_objects
    assert sorted(o.type for o in objects) == ["ARMATURE", "CAMERA", "MESH"]
    assert {k: len(getattr(bpy.data, k)) for k in counts} == counts
    assert again.name == "synthetic_p0_armature"


def test_rig_stored_in_the_motion_file_imports_too(clip) -> None:
    armature = build_scene.build_person(clip.motion_with_rig, None, "embedded")
    rig = np.load(clip.rig)
    bpy.context.scene.frame_set(FIRST + 1)
    kp = rig_math.regress_keypoints(evaluated_vertices(body_mesh(armature)), rig["keypoint_vertices"],
                                    rig["keypoint_weights"])  # fmt: skip
    assert np.linalg.norm(kp - clip.arrays["keypoints3d_world"][0], axis=-1).max() < 0.01


def test_workbench_render_from_the_imported_camera(imported, tmp_path) -> None:
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_percentage = 25  # 320 x 180
    scene.render.filepath = str(tmp_path / "frame.png")
    scene.frame_set(FIRST + 1)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(tmp_path / "frame.png"))
    pixels = np.array(image.pixels[:]).reshape(image.size[1], image.size[0], 4)
    assert tuple(image.size) == (320, 180)
    ink = np.abs(pixels[..., :3] - pixels[0, 0, :3]).sum(-1) > 0.05
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    assert ink.mean() > 0.01 and np.ptp(rows) > np.ptp(cols)  # a body, taller than wide


def test_per_frame_world_from_camera_animates_root_and_camera(clip, tmp_path) -> None:
    from backend.io import motion as motion_io

    loaded = motion_io.load(clip.motion)
    person = loaded.people[0]
    person.arrays["world_from_camera"] = np.repeat(person["world_from_camera"][None], T, axis=0)
    path = motion_io.save(tmp_path / "moving_camera.motion.npz", loaded)
    armature = build_scene.build_person(path, clip.rig, "moving_camera")
    camera = bpy.context.scene.camera
    assert len(_fcurves(camera)[0].keyframe_points) == T
    rig = np.load(clip.rig)
    bpy.context.scene.frame_set(FIRST + T)
    kp = rig_math.regress_keypoints(
        evaluated_vertices(body_mesh(armature)), rig["keypoint_vertices"], rig["keypoint_weights"]
    )
    assert np.linalg.norm(kp - clip.arrays["keypoints3d_world"][-1], axis=-1).max() < 0.01


def test_footage_behind_the_camera_and_ground_plane_replaced_on_reimport(clip, tmp_path) -> None:
    """An explicit video becomes the camera's background (frame f + 1 shows video frame f); the
    ground plane lies at z = 0 under the subject and is replaced, not duplicated, on re-import."""
    from tests.conftest import write_clip

    video = write_clip(tmp_path / "synthetic.mp4", frames=FIRST + T, size=(WIDTH // 8, HEIGHT // 8))
    for _ in range(2):
        armature = build_scene.build_person(
            clip.motion, clip.rig, "footage", video_path=video, ground_plane=True
        )
    objects = bpy.data.collections["footage"].all_objects
    assert sorted(o.type for o in objects) == ["ARMATURE", "CAMERA", "MESH", "MESH"]
    camera = bpy.context.scene.camera
    assert camera.users_collection[0].name == "footage" and camera.data.show_background_images
    (background,) = camera.data.background_images
    assert background.source == "MOVIE_CLIP" and Path(background.clip.filepath) == video
    assert (background.clip.frame_start, background.clip.frame_offset) == (1, 0)
    assert len([c for c in bpy.data.movieclips if Path(c.filepath) == video]) == 1
    ground = bpy.data.objects["footage_ground"]
    corners = np.array([v.co[:] for v in ground.data.vertices])
    assert np.abs(corners[:, 2]).max() < 1e-9
    pelvis = np.array(armature.matrix_world @ armature.pose.bones["root"].head)
    assert (corners[:, :2].min(0) < pelvis[:2]).all() and (corners[:, :2].max(0) > pelvis[:2]).all()
    build_scene.build_person(clip.motion, clip.rig, "footage", ground_plane=False)
    assert "footage_ground" not in bpy.data.objects
    assert not bpy.context.scene.camera.data.background_images  # no video next to this file


def test_source_video_is_found_next_to_the_motion_file_or_one_folder_up(tmp_path) -> None:
    from blender_addon.motion_data import find_source_video

    (tmp_path / "video2anim").mkdir()
    motion = tmp_path / "video2anim" / "clip.motion.npz"
    assert find_source_video(motion, "clip.mp4") is None and find_source_video(motion, "") is None
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert find_source_video(motion, "clip.mp4") == tmp_path / "clip.mp4"
    (tmp_path / "video2anim" / "clip.mp4").write_bytes(b"")
    assert find_source_video(motion, "clip.mp4") == tmp_path / "video2anim" / "clip.mp4"
