"""Camera/world frame conversion and foot contacts on a synthetic upright subject."""

from __future__ import annotations

import numpy as np

from backend.geometry import frames
from backend.geometry.skeleton import KEYPOINT_NAMES


def _standing_subject_in_camera() -> np.ndarray:
    """(T, K, 3) keypoints of a person 4 m in front of a level camera, facing it, feet 1.2 m below."""
    t = 10
    kp = np.zeros((t, len(KEYPOINT_NAMES), 3))

    def put(name: str, x: float, y: float) -> None:
        kp[:, KEYPOINT_NAMES.index(name)] = [x, y, 4.0]

    for side, sx in (("left", 1.0), ("right", -1.0)):
        # facing the camera: the person's left is on the image right (+x)
        put(f"{side}_shoulder", 0.2 * sx, -0.3)
        put(f"{side}_hip", 0.1 * sx, 0.2)
        put(f"{side}_ankle", 0.1 * sx, 1.1)
        put(f"{side}_heel", 0.1 * sx, 1.2)
        put(f"{side}_big_toe", 0.1 * sx, 1.2)
    kp[:, KEYPOINT_NAMES.index("left_big_toe"), 2] = 3.85  # toes point to the camera
    kp[:, KEYPOINT_NAMES.index("right_big_toe"), 2] = 3.85
    kp[5:, KEYPOINT_NAMES.index("right_heel"), 1] = 0.9  # right heel lifted in the second half
    return kp


def test_world_frame_is_z_up_ground_zero_facing_minus_y() -> None:
    kp = _standing_subject_in_camera()
    wfc = frames.estimate_world_from_camera(kp, np.ones(len(kp), bool))
    assert np.allclose(wfc[:3, :3] @ wfc[:3, :3].T, np.eye(3), atol=1e-9)
    world = frames.apply(wfc, kp)
    shoulders = world[0, KEYPOINT_NAMES.index("left_shoulder")]
    assert shoulders[2] > 1.3  # up is +Z
    left_heel = world[0, KEYPOINT_NAMES.index("left_heel")]
    assert abs(left_heel[2]) < 1e-6  # ground at z = 0
    toe = world[0, KEYPOINT_NAMES.index("left_big_toe")]
    assert toe[1] < left_heel[1]  # the subject faces -Y
    assert world[0, KEYPOINT_NAMES.index("left_hip"), 0] > 0  # the subject's left is +X


def test_up_ignores_a_torso_that_bends() -> None:
    """Bending over for most of the clip tilts the torso, not gravity: up stays the standing frames' up."""
    kp = _standing_subject_in_camera()
    kp = np.concatenate([kp, np.repeat(kp[:1], 20, axis=0)])
    hips = kp[10:, [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]].mean(1)
    for name in ("left_shoulder", "right_shoulder"):  # torso forward (towards the camera, -z), 80 degrees
        i = KEYPOINT_NAMES.index(name)
        rel = kp[10:, i] - hips
        kp[10:, i] = hips + np.stack([rel[:, 0], np.full(20, -0.5 * np.cos(np.radians(80))),
                                      np.full(20, -0.5 * np.sin(np.radians(80)))], axis=1)  # fmt: skip
    up = frames.torso_up(kp, np.ones(len(kp), bool))
    assert np.degrees(np.arccos(np.clip(up @ np.array([0.0, -1.0, 0.0]), -1, 1))) < 2.0
    shoulders = [KEYPOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder")]
    all_hips = kp[:, [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]].mean(1)
    mean_torso = (kp[:, shoulders].mean(1) - all_hips).mean(0)
    mean_torso /= np.linalg.norm(mean_torso)
    assert np.degrees(np.arccos(mean_torso @ np.array([0.0, -1.0, 0.0]))) > 30  # what the plain mean gave


def test_contacts_follow_height() -> None:
    kp = _standing_subject_in_camera()
    wfc = frames.estimate_world_from_camera(kp, np.ones(len(kp), bool))
    contacts = frames.foot_contacts(frames.apply(wfc, kp), np.arange(len(kp)) / 30.0)
    assert contacts.shape == (10, 4)
    assert contacts[:4, 0].min() > 0.9  # left heel planted
    assert contacts[7:, 2].max() < 0.1  # right heel 30 cm up
