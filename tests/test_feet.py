"""Feet and world: contacts, the ground plane, the contact stage, camera rotation from the background."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import roma
import torch

from backend.body.model import CanonicalPose
from backend.config import FitConfig, FitSchedule
from backend.detect.camera_motion import CameraMotion
from backend.fit import contacts
from backend.fit.data import FitInputs
from backend.fit.optimize import TemporalFitter
from backend.geometry import frames
from backend.geometry.skeleton import BODY_JOINTS, KEYPOINT_NAMES
from bench import feet as bench_feet

K = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])


def _pan(t: int, degrees: float) -> np.ndarray:
    """(T, 3, 3) rotations of each frame's camera to the first one's: a pan about the camera's y."""
    angles = np.radians(np.linspace(0.0, degrees, t))
    return roma.rotvec_to_rotmat(torch.as_tensor(np.stack([0 * angles, angles, 0 * angles], 1))).numpy()


def _textured(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (72, 128, 3)).astype(np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (1280, 720), interpolation=cv2.INTER_NEAREST), (5, 5), 0)


def test_camera_rotation_from_the_background_and_a_still_camera_stays_still() -> None:
    image, turns = _textured(), _pan(30, 12.0)
    motion = CameraMotion(K, 1280)
    for r in turns:  # frame t's view: directions of the first camera rotated into frame t's camera
        motion.add(cv2.warpPerspective(image, K @ r.T @ np.linalg.inv(K), (1280, 720)), [np.array([500, 200, 700, 700])])
    found = motion.rotations()
    assert found is not None
    error = roma.rotmat_geodesic_distance(torch.as_tensor(found), torch.as_tensor(turns)).numpy()
    assert np.degrees(error).max() < 0.5
    still = CameraMotion(K, 1280)
    rng = np.random.default_rng(1)
    for _ in range(20):
        noisy = np.clip(image.astype(int) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
        still.add(noisy, [])
    assert still.rotations() is None


def test_contacts_follow_slow_low_feet_and_leave_the_ground_in_a_jump() -> None:
    t = 40
    points = np.zeros((t, 4, 3))
    points[:, :, 0] = np.linspace(0, 1, 4)[None]  # four points, apart
    points[15:25, :, 2] = np.sin(np.linspace(0, np.pi, 10))[:, None] * 0.4  # a jump
    up = np.array([0.0, 0.0, 1.0])
    prob = contacts.contact_probabilities(points, up, np.arange(t) / 30.0, np.ones(t, bool))
    assert prob[:12].min() > 0.9 and prob[17:23].max() < 0.05
    gap = np.ones(t, bool)
    gap[5:7] = False  # a two-frame miss keeps its contacts; a long one has none
    assert contacts.contact_probabilities(points, up, np.arange(t) / 30.0, gap)[5:7].min() > 0.9
    gap[30:] = False
    assert contacts.contact_probabilities(points, up, np.arange(t) / 30.0, gap)[35:].max() == 0.0


def test_image_speeds_see_through_depth_jitter_and_a_pan() -> None:
    """A still foot 4 m away seen by a panning camera has no speed; one moving at 1 m/s has its speed across
    the line of sight;
    and a detection-based speed lets a still foot with jittery fitted depth count as planted."""
    t, times = 30, np.arange(30) / 30.0
    pan = _pan(t, 10.0)
    still = np.array([0.3, 0.8, 4.0])
    moving = still + np.stack([times, 0 * times, 0 * times], 1)  # 1 m/s along x in the first camera's frame
    world = np.stack([np.broadcast_to(still, (t, 3)), moving], 1)  # (T, 2, 3) in the first camera's frame
    camera = np.einsum("tji,tnj->tni", pan, world)  # frame t's camera coordinates
    pixels = camera[..., :2] / camera[..., 2:] * K[0, 0] + K[:2, 2]
    speed = contacts.image_speeds(pixels, camera[..., 2], K, pan, times)
    ray = moving / np.linalg.norm(moving, axis=-1, keepdims=True)
    across = np.linalg.norm(np.array([1.0, 0, 0]) - ray[:, :1] * ray, axis=-1)  # the unit velocity's part across
    assert speed[:, 0].max() < 1e-3 and np.abs(speed[1:-1, 1] - across[1:-1]).max() < 0.01
    rng = np.random.default_rng(0)
    points = np.zeros((t, 4, 3))
    points[..., 1] += rng.normal(0.0, 0.05, (t, 4))  # 5 cm of depth jitter per frame: ~1 m/s "speed"
    up, valid = np.array([0.0, 0.0, 1.0]), np.ones(t, bool)
    assert contacts.contact_probabilities(points, up, times, valid).mean() < 0.5
    seen = np.zeros((t, 4))
    assert contacts.contact_probabilities(points, up, times, valid, seen).min() > 0.9


def test_ground_is_the_lowest_level_the_feet_stand_on() -> None:
    """Standing on a box 1.4 m high, then on the floor: the floor is the ground, tilt found from soles."""
    rng = np.random.default_rng(0)
    tilt = roma.rotvec_to_rotmat(torch.tensor([0.1, 0.0, 0.05], dtype=torch.float64)).numpy()
    soles = rng.uniform(-2, 2, (60, 4, 3))
    soles[..., 2] = 0.0
    soles[:30, :, 2] = 1.4  # on the box
    soles = soles @ tilt.T
    normal, offset = contacts.initial_ground(soles, np.ones((60, 4)), tilt[:, 2] + 0.05, np.ones(60, bool))
    assert np.degrees(np.arccos(np.clip(normal @ tilt[:, 2], -1, 1))) < 1.0
    assert abs(offset) < 0.02  # through the floor's soles


def _still_body_seen_by_a_panning_camera(anny_body, t: int = 24) -> tuple[FitInputs, np.ndarray]:
    rest = anny_body.rest_state(torch.full((len(anny_body.phenotype_labels),), 0.5))
    pose = torch.zeros(1, 21, 3)
    pose[0, BODY_JOINTS.index("left_shoulder") - 1, 2] = -1.2
    pose[0, BODY_JOINTS.index("right_shoulder") - 1, 2] = 1.2
    turns = _pan(t, 15.0)
    facing = roma.rotvec_to_rotmat(torch.tensor([np.pi, 0.0, 0.0]))
    first = CanonicalPose(facing[None], roma.rotvec_to_rotmat(pose), torch.tensor([[0.3, 0.1, 4.0]]))
    with torch.no_grad():
        kp0 = anny_body.forward(first, rest).keypoints[0].numpy()  # first camera's frame
    kp = np.einsum("tji,kj->tki", turns, kp0)  # each frame's camera: R_t^T x
    px = kp @ K.T
    hips = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
    inputs = FitInputs(
        kp2d=(px[..., :2] / px[..., 2:]).astype(np.float32), conf2d=np.ones(kp.shape[:2], np.float32),
        lifted=(kp - kp[:, hips].mean(1, keepdims=True)).astype(np.float32), conf3d=np.ones(kp.shape[:2], np.float32),
        times=np.arange(t) / 30.0, intrinsics=K, image_height=720, camera_rotations=turns, valid=np.ones(t, bool),
    )  # fmt: skip
    return inputs, kp


def test_a_still_body_under_a_panning_camera_stays_still_in_the_world(anny_body) -> None:
    inputs, kp = _still_body_seen_by_a_panning_camera(anny_body)
    schedule = FitSchedule(iters_global=20, iters_pose3d=30, iters_body=40, iters_all=20, iters_contact=40)
    result = TemporalFitter(anny_body, FitConfig(schedule=schedule), torch.device("cpu")).fit(
        inputs, lambda e: None, lambda: False
    )
    assert result.ground is not None and "contact" in result.stats["stages"]
    world = frames.world_from_ground(result.keypoints3d, np.ones(len(kp), bool), *result.ground, inputs.camera_rotations)
    assert world.shape == (len(kp), 4, 4)
    pelvis = frames.apply(world, result.keypoints3d)[:, [11, 12]].mean(1)
    drift = np.linalg.norm(pelvis - pelvis.mean(0), axis=-1).max()
    assert drift < 0.05, drift  # under 5 cm over the clip
    without = frames.apply(frames.world_from_ground(result.keypoints3d, np.ones(len(kp), bool), *result.ground),
                           result.keypoints3d)[:, [11, 12]].mean(1)  # fmt: skip
    assert np.linalg.norm(without - without.mean(0), axis=-1).max() > 0.3  # the pan, taken as body motion


def test_bench_foot_metrics() -> None:
    t = 30
    truth = np.zeros((t, len(KEYPOINT_NAMES), 3))
    truth[..., 2] = 0.03
    truth[:, :, 0] = np.arange(len(KEYPOINT_NAMES))[None] * 0.1
    pred = truth.copy()
    pred[:, bench_feet.FOOT_POINTS[0], 0] += 0.002 * np.arange(t)  # a heel sliding 2 mm per frame
    pred[:, bench_feet.FOOT_POINTS[1], 2] = -0.01  # a toe 1 cm below the floor
    found = bench_feet.foot_metrics(pred, truth, np.ones(t, bool))
    assert found["skating_mm"] == pytest.approx(0.5, abs=0.01)  # one point of four slides 2 mm
    assert found["penetration_mm"] == pytest.approx(2.5, abs=0.01)  # 10 mm on one point of four
    assert found["root_path_mm"] < 1e-6


def test_foot_terms_have_correct_gradients_and_the_right_zeros() -> None:
    """contact_still, contact_height and below_ground: gradient checks (float64), zero for a planted foot
    standing on the ground, and below_ground blind to feet above the ground."""
    g = torch.Generator().manual_seed(0)
    points = torch.randn(10, 4, 3, generator=g, dtype=torch.float64).requires_grad_()  # every span of STILL_LAGS
    contact = 0.5 + 0.5 * torch.rand(10, 4, generator=g, dtype=torch.float64)
    heights = (0.05 * torch.randn(10, 4, generator=g, dtype=torch.float64)).requires_grad_()
    seen = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: contacts.contact_still(p, contact), (points,))
    # contact_height weighs by nearness to the ground as a constant (detached): its gradient is 2 w h / sum w
    (grad,) = torch.autograd.grad(contacts.contact_height(heights, contact), heights)
    w = contact * torch.exp(-(heights.detach() / contacts.NEAR_GROUND_M) ** 2)
    assert torch.allclose(grad, 2 * w * heights.detach() / w.sum().clamp(min=1.0))
    assert torch.autograd.gradcheck(lambda h: contacts.below_ground(h, seen), (heights,))
    still = torch.zeros(6, 4, 3, dtype=torch.float64)
    assert float(contacts.contact_still(still, torch.ones(6, 4))) == 0.0
    assert float(contacts.contact_height(torch.zeros(6, 4), torch.ones(6, 4))) == 0.0
    assert float(contacts.below_ground(torch.full((6, 4), 0.2), torch.ones(6))) == 0.0
    assert float(contacts.below_ground(torch.full((6, 4), -0.05), torch.ones(6))) > 0.0


def test_a_slow_creep_costs_more_than_its_steps_and_a_rolling_heel_only_its_steps() -> None:
    """A planted point creeping 1 mm per frame costs the mean of its squared displacements over 1, 4 and 8
    frames (one frame's steps alone would say 1e-6 m^2); where the contact is unsure (probability 0.5)
    only the one-frame steps count."""
    creep = torch.zeros(12, 4, 3, dtype=torch.float64)
    creep[:, 0, 0] = 0.001 * torch.arange(12)
    sure = torch.ones(12, 4, dtype=torch.float64)
    per_point = [1e-6 * lag**2 / 4 for lag in contacts.STILL_LAGS]  # one point of four moves
    assert float(contacts.contact_still(creep, sure)) == pytest.approx(sum(per_point) / len(per_point))
    unsure = torch.full((12, 4), 0.5, dtype=torch.float64)
    assert float(contacts.contact_still(creep, unsure)) == pytest.approx(per_point[0] / len(per_point))


def test_ground_parameters_move_the_plane_differentiably() -> None:
    """Heights over the ground follow its tilt and shift; the detached heights carry no ground gradient."""
    ground = contacts.GroundParams(np.array([0.0, -1.0, 0.0]), 1.5)
    feet = torch.tensor([[[0.0, 1.5, 4.0]] * 4])  # on the plane y = 1.5 (camera y points down)
    rest = torch.zeros(4)
    assert torch.allclose(ground.heights(feet, rest), torch.zeros(1, 4), atol=1e-6)
    ground.heights(feet + torch.tensor([0.0, -0.1, 0.0]), rest).sum().backward()
    assert float(ground.shift.grad) != 0.0
    ground.zero_grad()
    h = ground.heights(feet, rest, detached=True)
    assert not h.requires_grad
