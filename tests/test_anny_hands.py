"""Fingers on Anny: MediaPipe's hand landmarks on its skeleton, finger rotations on its finger bones, and
the fit recovering known finger poses from their 2D landmarks (against the same fit without the hand term)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import roma
import torch

from backend.body.model import CanonicalPose
from backend.config import FitConfig, FitSchedule
from backend.fit.losses import root_relative
from backend.fit.optimize import FitInputs, TemporalFitter
from backend.geometry.camera import project
from backend.geometry.skeleton import BODY_JOINTS, KEYPOINT_NAMES

LH, RH = KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")
K = torch.tensor([[1400.0, 0, 640], [0, 1400.0, 360], [0, 0, 1]])
PHENOTYPES = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.6, 0.5])


def _posed(body, hands: torch.Tensor | None, t: int = 1):
    rest = body.rest_state(PHENOTYPES)
    pose = CanonicalPose.rest(t)
    if hands is not None:
        rot = roma.rotvec_to_rotmat(hands)
        pose = dataclasses.replace(pose, left_hand=rot[:, 0], right_hand=rot[:, 1])
    out = body.forward(pose, rest)
    return body.hand_keypoints(out.transforms, rest), out, rest


def test_hand_landmarks_sit_on_the_finger_bones_and_move_with_them(anny_body) -> None:
    with torch.no_grad():
        rest_hands, out, rest = _posed(anny_body, None)
        heads = out.transforms[0, :, :3, :] @ rest.rest_bone_poses[0, :, :, 3, None]
        wrist = anny_body.bone_labels.index("wrist.L")
        assert torch.allclose(rest_hands[0, 0, 0], heads[wrist, :, 0], atol=1e-5)
        tip, dip = rest_hands[0, 0, 8], rest_hands[0, 0, 7]  # index fingertip beyond its last joint
        assert 0.01 < float((tip - dip).norm()) < 0.04
        assert torch.allclose(rest_hands[0, 0, :, 0], -rest_hands[0, 1, :, 0], atol=2e-3)  # mirrored hands
        curl = torch.zeros(1, 2, 15, 3)
        curl[0, 0, 1, 2] = 1.0  # left index PIP (SMPL-X order: index 0-2)
        bent, _, _ = _posed(anny_body, curl)
    moved = (bent - rest_hands).norm(dim=-1)[0]
    assert set(torch.nonzero(moved > 1e-4)[:, 1].tolist()) == {7, 8} and moved[1].max() == 0.0


def test_fast_hand_landmarks_match_the_full_skeleton(anny_body) -> None:
    """The fit's fast path (a reduced chain of the moving bones and fingers) gives forward()'s values."""
    g = torch.Generator().manual_seed(3)
    t = 4
    rot = lambda *shape: roma.rotvec_to_rotmat(0.4 * torch.randn(*shape, 3, generator=g))  # noqa: E731
    pose = CanonicalPose(rot(t), rot(t, 21), torch.randn(t, 3, generator=g), rot(t, 15), rot(t, 15))
    rest = anny_body.rest_state(PHENOTYPES)
    with torch.no_grad():
        out = anny_body.forward(pose, rest)
        kp, hands = anny_body.keypoints_with_hands(pose, rest)
    assert torch.allclose(kp, out.keypoints, atol=1e-5)
    assert torch.allclose(hands, anny_body.hand_keypoints(out.transforms, rest), atol=1e-5)


def _clip(body, t: int = 16):
    """A person 2.5 m away, arms out, fingers swinging and bending; exact 2D hands, noisy body."""
    g = torch.Generator().manual_seed(0)
    s = torch.linspace(0, 2 * math.pi, t)
    j = {n: BODY_JOINTS.index(n) - 1 for n in BODY_JOINTS[1:]}
    pose = torch.zeros(t, 21, 3)
    pose[:, j["left_shoulder"], 2], pose[:, j["right_shoulder"], 2] = -0.3, 0.3
    hands = torch.zeros(t, 2, 15, 3)
    hands[..., :12, 2] = 0.5 * torch.sin(s)[:, None, None]  # fingers swing in the image plane
    hands[..., :12, 0] = 0.4 * (1 + torch.sin(s))[:, None, None] / 2  # and bend
    hands[..., 12:, 1] = 0.4 * torch.cos(s)[:, None, None]  # thumbs
    orient = roma.rotvec_to_rotmat(torch.tensor([math.pi, 0.0, 0.0])).expand(t, 3, 3)
    transl = torch.tensor([0.0, 0.0, 2.5]).expand(t, 3)
    rest = body.rest_state(PHENOTYPES)
    rot = roma.rotvec_to_rotmat(hands)
    with torch.no_grad():
        out = body.forward(CanonicalPose(orient, roma.rotvec_to_rotmat(pose), transl, rot[:, 0], rot[:, 1]), rest)
        hand3d = body.hand_keypoints(out.transforms, rest)
        px, hand_px = project(out.keypoints, K), project(hand3d, K)
    ones = np.ones(hand_px.shape[:-1] + (1,))
    inputs = FitInputs(
        kp2d=(px + 1.0 * torch.randn(px.shape, generator=g)).numpy(), conf2d=np.full(px.shape[:2], 0.9),
        lifted=root_relative(out.keypoints, LH, RH).numpy(), conf3d=np.ones(px.shape[:2]),
        times=np.arange(t) / 30.0, intrinsics=K.numpy(), image_height=720,
        hand2d=np.concatenate([hand_px.numpy(), ones], axis=-1),
    )  # fmt: skip
    return inputs, hand3d.numpy(), hand_px.numpy()


_FINGER_CHAINS = [(0, 1, 2, 3, 4)] + [(0, b, b + 1, b + 2, b + 3) for b in (5, 9, 13, 17)]
"""Per finger the MediaPipe landmarks from the wrist to the tip."""


def joint_angles(hands: np.ndarray) -> np.ndarray:
    """(..., 15) the bend at each finger joint (degrees between consecutive segments) from MediaPipe hand
    landmarks (..., 21, 3): what an animator sees of a finger pose, whatever the bone rolls."""
    out = []
    for chain in _FINGER_CHAINS:
        for a, b, c in zip(chain, chain[1:], chain[2:], strict=False):
            u, v = hands[..., b, :] - hands[..., a, :], hands[..., c, :] - hands[..., b, :]
            cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
            out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.stack(out, -1)


def test_fit_recovers_finger_poses_from_hand_landmarks(anny_body) -> None:
    """Finger joint angles (the bend at each of the 15 joints per hand) against the truth, with the hand
    term and without it (the fingers then stay at Anny's rest hand), and the hand reprojection error."""
    inputs, truth, hand_px = _clip(anny_body)
    schedule = FitSchedule(iters_global=20, iters_pose3d=30, iters_body=40, iters_hands=100, iters_all=30,
                           iters_contact=0)  # fmt: skip
    errors = {}
    for name, w_hand in (("with", 1.0), ("without", 0.0)):
        cfg = FitConfig(schedule=schedule)
        cfg = dataclasses.replace(cfg, weights=dataclasses.replace(cfg.weights, w_hand_2d=w_hand))
        result = TemporalFitter(anny_body, cfg, torch.device("cpu")).fit(inputs, lambda e: None, lambda: False)
        fitted = result.parts["hand_keypoints3d"]
        angle = np.abs(joint_angles(fitted) - joint_angles(truth)).mean()
        reproj = np.linalg.norm(project(torch.as_tensor(fitted), K).numpy() - hand_px, axis=-1)
        errors[name] = (float(angle), float(np.median(reproj)))
    assert "hands" in result.stats["stages"]
    print(f"finger joint-angle error, deg, and hand reprojection median, px: {errors}")
    assert errors["with"][0] < 0.6 * errors["without"][0]  # the rest: bends in depth, ambiguous in 2D
    assert errors["with"][1] < 3.0 < errors["without"][1]
