"""The SMPL-family rig for Blender reproduces the model's skinning through the importer's own math.

Uses the tiny synthetic SMPL-X model (``tests/tiny_smplx.py``), not a real SMPL-X file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from backend.body.model import CanonicalPose
from backend.body.smpl_files import ModelFileConfig
from backend.body.smpl_rig import rig_pose, smpl_rig_arrays
from backend.body.smplx_body import SmplxBody
from blender_addon import rig_math
from tests.tiny_smplx import VERTEX_IDS, write_tiny_smplx


@pytest.fixture(scope="module")
def tiny_body(tmp_path_factory: pytest.TempPathFactory) -> SmplxBody:
    folder = write_tiny_smplx(tmp_path_factory.mktemp("tiny_rig")).parent
    return SmplxBody(folder, ModelFileConfig(model_type="smplx", vertex_ids=VERTEX_IDS))


def test_rig_matches_smplx_skinning(tiny_body: SmplxBody) -> None:
    t = 4
    gen = torch.Generator().manual_seed(3)
    betas = 0.8 * torch.randn(tiny_body.num_betas, generator=gen)
    rv = lambda *s: roma.rotvec_to_rotmat(0.5 * torch.randn(*s, 3, generator=gen))  # noqa: E731
    orient, pose, left, right, jaw = rv(t), rv(t, 21), rv(t, 15), rv(t, 15), rv(t)
    transl = torch.tensor([0.1, 0.2, 3.0]) + 0.1 * torch.randn(t, 3, generator=gen)
    rest = tiny_body.rest_state(betas)
    deltas = tiny_body.native_deltas(CanonicalPose(orient, pose, transl, left_hand=left, right_hand=right, jaw=jaw))
    transforms = tiny_body.bone_transforms(deltas, rest)
    verts = tiny_body.vertices(transforms, rest).numpy()
    joints = tiny_body.joints(transforms, rest).numpy()

    rig = smpl_rig_arrays(tiny_body, betas.numpy())
    assert list(rig["bone_labels"][:3]) == ["pelvis", "left_hip", "right_hip"]
    assert len(rig["bone_labels"]) == 55
    assert rig["shape_key_targets"].shape == (10, len(verts[0]), 3)
    assert rig["expression_labels"][0] == "Exp000" and rig["shape_key_labels"][9] == "Shape009"
    pose_aa = rig_pose(roma.rotmat_to_rotvec(orient).numpy(), tiny_body.native_pose_rotvec(deltas))
    rig_deltas = rig_math.anny_deltas(pose_aa, transl.numpy())
    frames = rig_math.posed_frames(
        rig["rest_poses"], rig["reference_orientations"], rig["bone_parents"], rig_deltas
    )
    np.testing.assert_allclose(frames[..., :3, 3], joints, atol=1e-5)
    skin = frames @ rig_math.rigid_inverse(rig["rest_poses"])  # (T, J, 4, 4): world rest -> camera
    dense = np.zeros((len(verts[0]), 55))
    np.put_along_axis(dense, rig["skin_indices"].astype(np.int64), rig["skin_weights"], axis=1)
    blended = np.einsum("vj,tjab->tvab", dense, skin)
    rest_w = rig["rest_vertices"].astype(np.float64)
    ours = np.einsum("tvab,vb->tva", blended[..., :3, :3], rest_w) + blended[..., :3, 3]
    np.testing.assert_allclose(ours, verts, atol=1e-5)
    # the bones point at their first child (Blender's head-to-tail axis)
    heads = rig["rest_poses"][:, :3, 3]
    y_axis = rig["rest_poses"][:, :3, 1]
    knee_dir = heads[4] - heads[1]
    np.testing.assert_allclose(y_axis[1], knee_dir / np.linalg.norm(knee_dir), atol=1e-6)


def test_rig_writes_with_a_motion_file(tiny_body: SmplxBody, tmp_path: Path) -> None:
    rig = smpl_rig_arrays(tiny_body, np.zeros(tiny_body.num_betas, np.float32))
    path = tmp_path / "rig.npz"
    np.savez_compressed(path, **rig)
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == set(rig)
