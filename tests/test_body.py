"""The Anny adapter: canonical T-pose, fast keypoints, mapping of joints to bones."""

from __future__ import annotations

import anny
import roma
import torch

from backend.body.model import CanonicalPose
from backend.geometry.skeleton import BODY_JOINTS, KEYPOINT_NAMES


def _kp(body, rest, pose, orient=None):
    t = pose.shape[0]
    orient = torch.eye(3).expand(t, 3, 3) if orient is None else orient
    deltas = body.native_deltas(CanonicalPose(orient, roma.rotvec_to_rotmat(pose), torch.zeros(t, 3)))
    return body.keypoints(body.bone_transforms(deltas, rest), rest), deltas


def test_zero_canonical_pose_is_a_t_pose_in_smplx_axes(anny_body) -> None:
    rest = anny_body.rest_state(torch.full((len(anny_body.phenotype_labels),), 0.5))
    kp, _ = _kp(anny_body, rest, torch.zeros(1, 21, 3))
    k = {n: kp[0, i] for i, n in enumerate(KEYPOINT_NAMES)}
    arm = k["left_wrist"] - k["left_shoulder"]
    assert arm[0] > 0.4 and abs(arm[1]) < 0.05 and abs(arm[2]) < 0.05  # left arm along +x
    assert (k["right_wrist"] - k["right_shoulder"])[0] < -0.4
    assert k["nose"][1] > k["left_hip"][1] + 0.5  # y is up
    assert k["nose"][2] > k["left_ear"][2]  # z is the front


def test_fast_keypoints_match_the_regressor_on_skinned_vertices(anny_body) -> None:
    rest = anny_body.rest_state(torch.tensor([0.2, 0.7, 0.4, 0.6, 0.8, 0.3]))
    pose = 0.3 * torch.randn(3, 21, 3)
    kp, deltas = _kp(anny_body, rest, pose)
    transforms = anny_body.bone_transforms(deltas, rest)
    verts = anny_body.vertices(transforms, rest)
    regressor = anny.KeypointsRegressor.coco(anny_body.model, labels=list(KEYPOINT_NAMES))
    assert torch.allclose(regressor({"vertices": verts}), kp, atol=1e-4)


def test_each_joint_moves_the_keypoints_below_it(anny_body) -> None:
    rest = anny_body.rest_state(torch.full((6,), 0.5))
    base, _ = _kp(anny_body, rest, torch.zeros(1, 21, 3))
    # (joint, axis of a rotation that is not a twist about the bone, keypoint it must move)
    for joint, axis, moved in (
        ("left_knee", 0, "left_ankle"),
        ("right_elbow", 1, "right_wrist"),
        ("neck", 0, "nose"),
    ):
        pose = torch.zeros(1, 21, 3)
        pose[0, BODY_JOINTS.index(joint) - 1, axis] = 0.6
        kp, _ = _kp(anny_body, rest, pose)
        delta = (kp - base).norm(dim=-1)[0]
        assert delta[KEYPOINT_NAMES.index(moved)] > 0.05, joint
        assert delta[KEYPOINT_NAMES.index("left_hip")] < 1e-4, joint


def test_knee_flexion_is_positive_x_in_canonical_axes(anny_body) -> None:
    rest = anny_body.rest_state(torch.full((6,), 0.5))
    pose = torch.zeros(1, 21, 3)
    pose[0, BODY_JOINTS.index("left_knee") - 1, 0] = 1.0
    kp, _ = _kp(anny_body, rest, pose)
    ankle, knee = kp[0, KEYPOINT_NAMES.index("left_ankle")], kp[0, KEYPOINT_NAMES.index("left_knee")]
    assert ankle[2] < knee[2] - 0.2  # the shin swings backwards (-z)


def test_reduced_chain_keypoints_equal_full_kinematics(anny_body) -> None:
    rest = anny_body.rest_state(torch.tensor([0.9, 0.1, 0.6, 0.3, 0.2, 0.7]))
    t = 6
    orient = roma.rotvec_to_rotmat(torch.randn(t, 3))
    pose = roma.rotvec_to_rotmat(0.5 * torch.randn(t, 21, 3))
    transl = torch.randn(t, 3)
    full = anny_body.keypoints(
        anny_body.bone_transforms(anny_body.native_deltas(CanonicalPose(orient, pose, transl)), rest), rest
    )
    fast = anny_body.keypoints_fast(CanonicalPose(orient, pose, transl), rest)
    assert torch.allclose(full, fast, atol=1e-5)
