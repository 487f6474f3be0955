"""Blender import of an SMPL-X motion file: SMPL-X joint names, Shape/Exp shape keys, keyframes for
body, hands and jaw, and the skinned mesh where the model puts it.

The motion file is written with the pipeline's own layout (``pipeline.record.person_arrays``)
from the tiny synthetic SMPL-X model of ``tests/tiny_smplx.py`` (no real SMPL-X file), posed by random
body, finger, jaw and expression parameters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from backend.body.smpl_files import ModelFileConfig
from backend.body.smplx_body import SmplxBody
from backend.geometry.skeleton import KEYPOINT_NAMES
from tests.tiny_smplx import VERTEX_IDS, pose_smplx, write_tiny_smplx

bpy = pytest.importorskip("bpy")
from blender_addon import build_scene  # noqa: E402  (needs bpy)
from tests.bpy_helpers import body_mesh, evaluated_vertices  # noqa: E402

T, FIRST = 4, 5
K = np.array([[900.0, 0.0, 480.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])


def _motion(folder: Path) -> tuple[Path, np.ndarray]:
    """Write the motion file; return it and the expected world-frame vertices (T, V, 3)."""
    from backend.detect.types import SubjectTrack
    from backend.fit.optimize import FitResult
    from backend.geometry import frames
    from backend.io import motion as motion_io
    from tests.conftest import recorded_arrays

    body = SmplxBody(write_tiny_smplx(folder / "models").parent, ModelFileConfig(vertex_ids=VERTEX_IDS))
    gen = torch.Generator().manual_seed(0)
    rv = lambda *s: 0.3 * torch.randn(*s, 3, generator=gen)  # noqa: E731
    upright = roma.rotvec_to_rotmat(torch.tensor([np.pi, 0.0, 0.0]))
    orient = roma.rotvec_to_rotmat(rv(T)) @ upright
    pose, hands, jaw = rv(T, 21), rv(T, 2, 15), rv(T).abs()
    expression = torch.randn(T, body.num_expression, generator=gen)
    transl = torch.tensor([0.0, 0.1, 3.0]) + 0.05 * torch.randn(T, 3, generator=gen)
    betas = 0.5 * torch.randn(body.num_betas, generator=gen)
    rest = body.rest_state(betas)
    deltas, transforms = pose_smplx(body, orient, pose, transl, hands, jaw, rest)
    with torch.no_grad():
        kp = body.keypoints(transforms, rest).numpy()
        verts = body.vertices(transforms, rest, expression).numpy()
    projected = kp @ K.T
    parts = {
        "left_hand_pose": hands[:, 0].numpy(), "right_hand_pose": hands[:, 1].numpy(),
        "jaw_pose": jaw.numpy(), "expression": expression.numpy(),
    }  # fmt: skip
    fit = FitResult(
        global_orient=roma.rotmat_to_rotvec(orient).numpy(), body_pose=pose.numpy(), transl=transl.numpy(),
        phenotypes=betas.numpy(), keypoints3d=kp, projected=projected[..., :2] / projected[..., 2:],
        native_pose=body.native_pose_rotvec(deltas), parts=parts,
    )  # fmt: skip
    zeros = np.zeros
    track = SubjectTrack(
        track_id=0, frame_index=np.arange(FIRST, FIRST + T), time_s=np.arange(T) / 25.0,
        valid=np.ones(T, bool), body2d=zeros((T, 33, 3)), body_world=zeros((T, 33, 3)),
        left_hand2d=zeros((T, 21, 3)), right_hand2d=zeros((T, 21, 3)), face2d=zeros((T, 468, 3)),
        bbox=zeros((T, 4)), silhouette=zeros((T, 64, 64), np.uint8),
    )  # fmt: skip
    arrays = recorded_arrays(track, fit, body)
    meta = {
        "body_model": {"name": "smplx", "bone_labels": body.joint_names},
        "fps": 25.0, "frame_count": T, "image_size": [960, 720], "intrinsics": K.tolist(),
        "keypoint_names": {"keypoints3d": list(KEYPOINT_NAMES)},
    }  # fmt: skip
    path = folder / "smplx.motion.npz"
    motion_io.save(path, motion_io.MotionFile(meta, [motion_io.PersonMotion(0, arrays)]))
    return path, frames.apply(arrays["world_from_camera"], verts)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory):
    path, want = _motion(tmp_path_factory.mktemp("blender_smplx"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return build_scene.build_person(path, None, "smplx"), want, path




def test_armature_has_smplx_joints_and_mesh_has_shape_and_expression_keys(imported) -> None:
    armature, _, _ = imported
    names = [b.name for b in armature.data.bones]
    assert len(names) == 55 and names[:2] == ["pelvis", "left_hip"]
    assert {"jaw", "left_eye", "left_index1", "right_thumb3"} <= set(names)
    keys = [k.name for k in body_mesh(armature).data.shape_keys.key_blocks]
    assert keys == ["Basis"] + [f"Shape{i:03d}" for i in range(10)] + [f"Exp{i:03d}" for i in range(10)]


def test_blender_reproduces_the_posed_smplx_mesh(imported) -> None:
    armature, want, _ = imported
    mesh = body_mesh(armature)
    errors = []
    for t in range(T):
        bpy.context.scene.frame_set(FIRST + t + 1)
        errors.append(float(np.linalg.norm(evaluated_vertices(mesh) - want[t], axis=-1).max()))
    assert max(errors) < 1e-4, errors  # body, fingers, jaw and expression


def test_hands_jaw_and_expression_are_keyed(imported) -> None:
    armature, _, _ = imported
    action = armature.animation_data.action
    if hasattr(action, "slots"):
        from bpy_extras import anim_utils

        curves = anim_utils.action_get_channelbag_for_slot(
            action, armature.animation_data.action_slot
        ).fcurves
    else:
        curves = action.fcurves
    paths = {c.data_path: len(c.keyframe_points) for c in curves}
    for bone in ("left_index2", "right_pinky1", "jaw", "left_elbow"):
        assert paths[f'pose.bones["{bone}"].rotation_quaternion'] == T
    key = body_mesh(armature).data.shape_keys
    bpy.context.scene.frame_set(FIRST + 2)
    assert abs(key.key_blocks["Exp000"].value) > 0.0


def test_reimport_replaces_the_expression_action(imported) -> None:
    _, _, path = imported
    before = len(bpy.data.actions)
    build_scene.build_person(path, None, "smplx")
    assert len(bpy.data.actions) == before
