"""What the real bench's remaining error is made of: the default prediction with one thing taken from the truth.

Two oracle rows of ``bench real`` rebuild the prediction along a tree over the 12 scored joints (mid-hip ->
hips -> knees -> ankles; mid-hip -> mid-shoulder -> shoulders -> elbows -> wrists), keeping everything but:

- ``truth_lengths``: every bone gets the truth's length (its median over the clip), the prediction's
  direction. What is left is error in the bones' directions; the gain is what body proportions (the body
  model's shape, or where its joints sit) could still give.
- ``truth_depth_order``: a limb bone (upper arm, forearm, thigh, shin) whose far end the prediction puts in
  front of its near end while the truth puts it behind, or the other way round (both by at least
  ``MIN_DEPTH_SHARE`` of the bone's length along the viewing ray), is mirrored along that ray. The image
  barely changes: this is the monocular depth ambiguity the 2D keypoints cannot settle, and the gain is
  what choosing the right one of the two would give.

Pure numpy; joints in the realbench's ``names`` order, camera frame (OpenCV axes), metres.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

MIN_DEPTH_SHARE = 0.25
"""A bone counts as flipped only where both its predicted and its true depth span are at least this share of
its length (near-parallel bones have no clear depth order)."""
MID_HIP, MID_SHOULDER = "mid_hip", "mid_shoulder"
TREE: tuple[tuple[str, str], ...] = (
    (MID_HIP, "left_hip"), (MID_HIP, "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    (MID_HIP, MID_SHOULDER), (MID_SHOULDER, "left_shoulder"), (MID_SHOULDER, "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
)  # fmt: skip
"""(parent, child) bones, parents first."""
LIMB_BONES = frozenset(TREE[2:6] + TREE[9:])

BoneMap = Callable[[str, str, np.ndarray], np.ndarray]
"""(parent, child, predicted bone vectors (T, 3)) -> the bone vectors (T, 3) the rebuild uses."""


def _with_midpoints(points: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """{joint: (T, 3)} for the named joints plus the mid-hip and mid-shoulder."""
    out = {n: points[:, i] for i, n in enumerate(names)}
    out[MID_HIP] = (out["left_hip"] + out["right_hip"]) / 2.0
    out[MID_SHOULDER] = (out["left_shoulder"] + out["right_shoulder"]) / 2.0
    return out


def _rebuild(pred: np.ndarray, names: Sequence[str], bone: BoneMap) -> np.ndarray:
    """(T, J, 3) the prediction rebuilt from its mid-hip along ``TREE`` with the bones ``bone`` gives."""
    src = _with_midpoints(pred, names)
    out = {MID_HIP: src[MID_HIP]}
    for parent, child in TREE:
        out[child] = out[parent] + bone(parent, child, src[child] - src[parent])
    return np.stack([out[n] for n in names], axis=1)


def truth_lengths(pred: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(T, J, 3) the prediction (T, J, 3) with the truth's (T, J, 3; NaN frames allowed) bone lengths."""
    ref = _with_midpoints(truth, names)

    def bone(parent: str, child: str, vec: np.ndarray) -> np.ndarray:
        length = np.nanmedian(np.linalg.norm(ref[child] - ref[parent], axis=-1))
        return vec / np.maximum(np.linalg.norm(vec, axis=-1, keepdims=True), 1e-9) * length

    return _rebuild(pred, names, bone)


def truth_depth_order(pred: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, float]:
    """The prediction with its limb bones' depth order taken from the truth (module docstring), and the share
    (0..1) of limb bones it mirrored over the frames with a truth. Both in camera frames; NaN truth frames are
    left alone."""
    ref, src = _with_midpoints(truth, names), _with_midpoints(pred, names)
    flipped: list[np.ndarray] = []
    known = np.isfinite(truth).all(axis=(1, 2))

    def bone(parent: str, child: str, vec: np.ndarray) -> np.ndarray:
        if (parent, child) not in LIMB_BONES:
            return vec
        ray = src[child] / np.maximum(np.linalg.norm(src[child], axis=-1, keepdims=True), 1e-9)
        true_vec = ref[child] - ref[parent]
        true_ray = ref[child] / np.maximum(np.linalg.norm(ref[child], axis=-1, keepdims=True), 1e-9)
        depth, true_depth = (vec * ray).sum(-1), (true_vec * true_ray).sum(-1)
        length, true_length = np.linalg.norm(vec, axis=-1), np.linalg.norm(true_vec, axis=-1)
        with np.errstate(invalid="ignore"):
            flip = (np.sign(depth) != np.sign(true_depth)) & (np.abs(depth) >= MIN_DEPTH_SHARE * length)
            flip &= np.abs(true_depth) >= MIN_DEPTH_SHARE * true_length
        flipped.append(flip[known])
        return np.where(flip[:, None], vec - 2.0 * depth[:, None] * ray, vec)

    rebuilt = _rebuild(pred, names, bone)
    share = float(np.concatenate(flipped).mean()) if known.any() else 0.0
    return rebuilt, share
