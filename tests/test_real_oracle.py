"""The real bench's oracle rows (``bench/real_oracle.py``) on synthetic skeletons in a camera frame."""

from __future__ import annotations

import numpy as np

from bench.real_oracle import LIMB_BONES, truth_depth_order, truth_lengths

NAMES = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
         "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")  # fmt: skip
_STANCE = {  # camera frame (x right, y down, z forward), metres; the subject faces the camera 3 m away
    "left_shoulder": (0.18, -0.5, 3.0), "right_shoulder": (-0.18, -0.5, 3.0),
    "left_elbow": (0.22, -0.25, 2.85), "right_elbow": (-0.22, -0.25, 3.1),
    "left_wrist": (0.25, -0.05, 2.7), "right_wrist": (-0.25, -0.02, 3.0),
    "left_hip": (0.1, 0.0, 3.0), "right_hip": (-0.1, 0.0, 3.0),
    "left_knee": (0.11, 0.4, 2.9), "right_knee": (-0.11, 0.4, 3.05),
    "left_ankle": (0.12, 0.8, 3.0), "right_ankle": (-0.12, 0.8, 3.0),
}  # fmt: skip


def _truth(frames: int = 6) -> np.ndarray:
    """(T, 12, 3) the stance drifting sideways."""
    base = np.array([_STANCE[n] for n in NAMES])
    return base[None] + np.linspace(0.0, 0.3, frames)[:, None, None] * np.array([1.0, 0.0, 0.0])


def _mirror_forearm(points: np.ndarray) -> np.ndarray:
    """The left wrist mirrored along its viewing ray about the elbow: the same image, the other depth order."""
    out = points.copy()
    elbow, wrist = NAMES.index("left_elbow"), NAMES.index("left_wrist")
    vec = out[:, wrist] - out[:, elbow]
    ray = out[:, wrist] / np.linalg.norm(out[:, wrist], axis=-1, keepdims=True)
    out[:, wrist] = out[:, elbow] + vec - 2.0 * (vec * ray).sum(-1, keepdims=True) * ray
    return out


def test_truth_lengths_keeps_directions_and_takes_lengths() -> None:
    truth = _truth()
    assert np.allclose(truth_lengths(truth, truth, NAMES), truth, atol=1e-9)
    hips = (truth[:, NAMES.index("left_hip")] + truth[:, NAMES.index("right_hip")]) / 2.0
    longer = hips[:, None] + 1.3 * (truth - hips[:, None])  # every bone 30% longer, the same directions
    assert np.allclose(truth_lengths(longer, truth, NAMES), truth, atol=1e-9)
    bent = _mirror_forearm(truth)  # a direction error stays
    assert np.abs(truth_lengths(bent, truth, NAMES) - truth).max() > 0.05


def test_truth_depth_order_mirrors_only_the_flipped_bone() -> None:
    truth = _truth()
    same, share = truth_depth_order(truth, truth, NAMES)
    assert share == 0.0 and np.allclose(same, truth)
    flipped = _mirror_forearm(truth)
    fixed, share = truth_depth_order(flipped, truth, NAMES)
    assert np.isclose(share, 1.0 / len(LIMB_BONES))  # one limb bone of eight, in every frame
    assert np.allclose(fixed, truth, atol=1e-9)


def test_frames_without_truth_are_left_alone() -> None:
    truth = _truth()
    truth[2] = np.nan
    flipped = _mirror_forearm(_truth())
    fixed, share = truth_depth_order(flipped, truth, NAMES)
    assert np.allclose(fixed[2], flipped[2]) and np.isclose(share, 1.0 / len(LIMB_BONES))
    assert np.allclose(fixed[[0, 1, 3, 4, 5]], _truth()[[0, 1, 3, 4, 5]], atol=1e-9)
    assert np.isfinite(truth_lengths(flipped, truth, NAMES)).all()
