"""The temporal fit with an SMPL-X body: body, hands and face converge on a synthetic clip.

The clip is rendered through a tiny synthetic SMPL-X model in the real file format
(``tests/tiny_smplx.py``; no real SMPL-X file is used): known body, finger, jaw and expression
parameters -> body, hand and face keypoints -> pixels with an intrinsics matrix, plus noisy 3D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from backend.body.model import CanonicalPose
from backend.body.smpl_files import ModelFileConfig
from backend.body.smplx_body import SmplxBody
from backend.config import CollisionConfig, FitConfig, FitSchedule
from backend.fit.capsules import KeypointCapsules
from backend.fit.losses import root_relative
from backend.fit.optimize import FitInputs, TemporalFitter
from backend.geometry.camera import project
from backend.geometry.skeleton import BODY_JOINTS, KEYPOINT_NAMES
from tests.tiny_smplx import VERTEX_IDS, pose_smplx, write_tiny_smplx

LH, RH = KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")
K = torch.tensor([[900.0, 0, 480], [0, 900.0, 360], [0, 0, 1]])


@pytest.fixture(scope="module")
def tiny_body(tmp_path_factory: pytest.TempPathFactory) -> SmplxBody:
    folder = write_tiny_smplx(tmp_path_factory.mktemp("tiny_smplx")).parent
    return SmplxBody(folder, ModelFileConfig(model_type="smplx", vertex_ids=VERTEX_IDS))


@dataclass
class Truth:
    body_pose: torch.Tensor
    """(T, 21, 3)."""
    hands: torch.Tensor
    """(T, 2, 15, 3)."""
    jaw: torch.Tensor
    """(T, 3)."""
    expression: torch.Tensor
    """(T, E)."""
    keypoints: np.ndarray
    """(T, K, 3)."""
    hands2d: np.ndarray
    """(T, 2, 21, 2)."""


def synthetic_clip(body: SmplxBody, t: int = 24, seed: int = 0) -> tuple[FitInputs, Truth]:
    """A person 3 m away turning, moving an arm and a leg, curling the fingers and talking."""
    g = torch.Generator().manual_seed(seed)
    s = torch.linspace(0, 2 * math.pi, t)
    j = {n: BODY_JOINTS.index(n) - 1 for n in BODY_JOINTS[1:]}
    pose = torch.zeros(t, 21, 3)
    pose[:, j["left_hip"], 0] = -0.5 * torch.sin(s).clamp(min=0)
    pose[:, j["left_knee"], 0] = 0.8 * torch.sin(s).clamp(min=0)
    pose[:, j["left_shoulder"], 2] = -1.0 + 0.4 * torch.sin(s)
    pose[:, j["right_shoulder"], 2] = 0.9
    pose[:, j["left_elbow"], 1] = -0.6
    curl = 0.5 + 0.4 * torch.sin(s)  # finger flexion, radians per joint
    hands = body.hand_mean[None].repeat(t, 1, 1, 1).clone()
    hands[:, 0, :12, 2] -= curl[:, None]  # left fingers flex about -z, right about +z (mirrored)
    hands[:, 1, :12, 2] += 0.8 * curl[:, None]
    hands[:, :, 12:, 1] += 0.3 * torch.sin(s)[:, None, None]  # thumbs
    jaw = torch.zeros(t, 3)
    jaw[:, 0] = 0.25 * (1 + torch.sin(3 * s)) / 2
    expression = 0.8 * torch.sin(s[:, None] + torch.arange(body.num_expression)[None])
    facing = roma.rotvec_to_rotmat(torch.tensor([math.pi, 0.0, 0.0]))
    turn = roma.rotvec_to_rotmat(torch.stack([torch.zeros(t), 0.4 * torch.sin(s / 2), torch.zeros(t)], 1))
    orient = facing @ turn
    transl = torch.stack([0.2 * torch.sin(s), torch.full((t,), 0.1), torch.full((t,), 3.0)], 1)
    rest = body.rest_state(0.5 * torch.randn(body.num_betas, generator=g))
    deltas, transforms = pose_smplx(body, orient, pose, transl, hands, jaw, rest)
    with torch.no_grad():
        kp = body.keypoints(transforms, rest)
        hand_px = project(body.hand_keypoints(transforms, rest), K)
        face_px = project(body.face_keypoints(transforms, rest, expression), K)
        px = project(kp, K)

    def noisy(x: torch.Tensor, sigma: float) -> np.ndarray:
        return (x + sigma * torch.randn(x.shape, generator=g)).numpy()

    def with_conf(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)

    inputs = FitInputs(
        kp2d=noisy(px, 1.0), conf2d=np.full((t, len(KEYPOINT_NAMES)), 0.9),
        lifted=noisy(root_relative(kp, LH, RH), 0.01), conf3d=np.ones((t, len(KEYPOINT_NAMES))),
        times=np.arange(t) / 30.0, intrinsics=K.numpy(), image_height=720,
        hand2d=with_conf(noisy(hand_px, 0.5)), face2d=with_conf(noisy(face_px, 0.5)),
    )  # fmt: skip
    return inputs, Truth(pose, hands, jaw, expression, kp.numpy(), hand_px.numpy())


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angles (...) between axis-angle rotations a and b (..., 3)."""
    ra, rb = roma.rotvec_to_rotmat(torch.as_tensor(a)), roma.rotvec_to_rotmat(torch.as_tensor(b))
    return roma.rotmat_geodesic_distance(ra, rb).numpy()


def _rel(x: np.ndarray) -> np.ndarray:
    return x - 0.5 * (x[:, LH : LH + 1] + x[:, RH : RH + 1])


def test_smplx_fit_converges_on_body_hands_and_face(tiny_body: SmplxBody) -> None:
    inputs, truth = synthetic_clip(tiny_body)
    # The synthetic body hangs in the air with its feet sliding (no real contacts): no contact stage.
    cfg = FitConfig(
        schedule=FitSchedule(
            iters_global=30, iters_pose3d=40, iters_body=80, iters_hands=80, iters_face=60, iters_all=60, iters_contact=0
        )
    )
    events: list[dict] = []
    result = TemporalFitter(tiny_body, cfg, torch.device("cpu")).fit(inputs, events.append, lambda: False)
    assert list(result.stats["stages"]) == ["global", "pose3d", "body", "hands", "face", "all"]
    assert "collision" in result.stats["stages"]["all"]["terms"]  # on by default for the SMPL family
    assert events[-1]["done"] == events[-1]["total"]
    # body
    mpjpe_mm = 1000 * np.linalg.norm(_rel(result.keypoints3d) - _rel(truth.keypoints), axis=-1).mean()
    assert mpjpe_mm < 25.0, mpjpe_mm
    # hands: finger rotations from the mean hand start to well below the initial error
    fitted = np.stack([result.parts["left_hand_pose"], result.parts["right_hand_pose"]], 1)
    start = tiny_body.hand_mean[None].expand_as(truth.hands).numpy()
    initial = _angle(start, truth.hands.numpy())[..., :12].mean()
    final = _angle(fitted, truth.hands.numpy())[..., :12].mean()
    assert final < 0.6 * initial, (initial, final)  # the rest: sideways bends, hidden in depth
    flexion = np.abs(fitted[..., :12, 2] - truth.hands.numpy()[..., :12, 2]).mean()
    assert flexion < 0.35 * np.abs(start[..., :12, 2] - truth.hands.numpy()[..., :12, 2]).mean()
    hand_px = project(torch.as_tensor(result.parts["hand_keypoints3d"]), K).numpy()
    assert np.median(np.linalg.norm(hand_px - truth.hands2d, axis=-1)) < 1.0
    # face: jaw opening recovered, expression in the right direction
    jaw_err = np.abs(result.parts["jaw_pose"][:, 0] - truth.jaw[:, 0].numpy()).mean()
    assert jaw_err < 0.3 * truth.jaw[:, 0].abs().mean(), jaw_err
    corr = np.corrcoef(result.parts["expression"].ravel(), truth.expression.numpy().ravel())[0, 1]
    assert corr > 0.9, corr
    assert result.parts["expression"].shape == (24, tiny_body.num_expression)


def test_smplx_fit_without_hands_or_face_skips_their_stages(tiny_body: SmplxBody) -> None:
    inputs, truth = synthetic_clip(tiny_body, t=10, seed=1)
    inputs.hand2d = None
    inputs.face2d[..., 2] = 0.0
    cfg = FitConfig(  # a body hanging in the air, feet sliding: no contact stage (as above)
        schedule=FitSchedule(iters_global=20, iters_pose3d=20, iters_body=40, iters_all=20, iters_contact=0),
        collision=CollisionConfig(mode="off"),
    )
    result = TemporalFitter(tiny_body, cfg, torch.device("cpu")).fit(inputs, lambda e: None, lambda: False)
    assert list(result.stats["stages"]) == ["global", "pose3d", "body", "all"]
    assert "collision" not in result.stats["stages"]["all"]["terms"]
    mpjpe_mm = 1000 * np.linalg.norm(_rel(result.keypoints3d) - _rel(truth.keypoints), axis=-1).mean()
    assert mpjpe_mm < 40.0, mpjpe_mm
    assert np.isfinite(result.parts["left_hand_pose"]).all() and result.phenotypes.shape == (10,)


def test_keypoint_capsules_penalise_an_arm_through_the_torso(tiny_body: SmplxBody) -> None:
    rest = tiny_body.rest_state(torch.zeros(tiny_body.num_betas))
    eye = torch.eye(3)

    def posed(pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        transforms = tiny_body.bone_transforms(
            tiny_body.native_deltas(CanonicalPose(eye[None], roma.rotvec_to_rotmat(pose)[None], torch.zeros(1, 3))), rest
        )
        return tiny_body.keypoints(transforms, rest), tiny_body.vertices(transforms, rest)

    kp0, verts0 = posed(torch.zeros(21, 3))
    capsules = KeypointCapsules.build(kp0[0], verts0[0])
    assert float(capsules.penalty(kp0)) == 0.0  # the T-pose does not collide
    relaxed = torch.zeros(21, 3)
    relaxed[15, 2], relaxed[16, 2] = -1.2, 1.2  # arms down along the sides
    assert float(capsules.penalty(posed(relaxed)[0])) < 1e-6
    crossing = torch.zeros(21, 3)
    crossing[15, 1] = -1.4  # left upper arm swung forward ...
    crossing[17, 1] = -2.5  # ... and the forearm folded back into the chest
    kp = posed(crossing)[0].requires_grad_(True)
    value = capsules.penalty(kp)
    value.backward()
    assert float(value) > 1e-5 and float(kp.grad.abs().sum()) > 0


def test_tiny_model_file_is_a_real_format_npz(tmp_path: Path) -> None:
    from backend.body.smpl_files import find_model_file, load_model_arrays

    path = write_tiny_smplx(tmp_path)
    arrays = load_model_arrays(find_model_file(tmp_path, "smplx", "neutral"), "smplx")
    assert arrays["shapedirs"].shape[1:] == (3, 20) and arrays["kintree_table"].shape == (2, 55)
    assert path.name == "SMPLX_NEUTRAL.npz"


def test_smplx_fit_runs_the_mesh_collision_stage(tiny_body: SmplxBody) -> None:
    inputs, truth = synthetic_clip(tiny_body, t=6, seed=2)
    cfg = FitConfig(
        schedule=FitSchedule(iters_global=10, iters_pose3d=10, iters_body=20, iters_hands=10, iters_face=10, iters_all=10),
        collision=CollisionConfig(mode="mesh", iters_mesh=10),
    )  # fmt: skip
    result = TemporalFitter(tiny_body, cfg, torch.device("cpu")).fit(inputs, lambda e: None, lambda: False)
    stage = result.stats["stages"]["collision"]
    assert list(result.stats["stages"])[-1] == "collision" and stage["evaluations"] == 10
    assert "mesh_collision" in stage["terms"] and stage["mesh"]["searches"] == 2
    assert np.isfinite(result.keypoints3d).all() and np.isfinite(result.parts["left_hand_pose"]).all()
