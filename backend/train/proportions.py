"""Body-proportion augmentation of the lifter's training windows.

Every synthetic body is an Anny, and Anny's phenotypes span a narrower range of proportions than
people do: on real footage the learned lifter gave a man a 476 mm shoulder-to-hip distance against
his 530 and forearms of 220 mm against 258 (``python -m backend bench real``). A lifter that has only
seen Anny's proportions imposes them, and a limb it believes short must lie flatter in the image to
match the 2D: depth error. Here each window's keypoints are re-grown segment by segment, parent to
child, with every segment group (torso, neck, shoulder width, hip width, upper arms, forearms,
thighs, shins, feet) scaled by its own random factor, the same for left and right up to a small
asymmetry. The 2D the network sees is projected from the re-grown keypoints, so input and target
stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.train.synth import MID_HIP

__all__ = ["GROUPS", "ProportionConfig", "SEGMENTS", "regrow", "segment_scales"]

_MID_HIP, _MID_SHOULDER = -1, -2
"""Virtual points: the mean of the hips (the tree's root) and of the shoulders."""

SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("mid_hip", "mid_shoulder", "torso"),
    ("mid_hip", "left_hip", "hips"), ("mid_hip", "right_hip", "hips"),
    ("mid_shoulder", "left_shoulder", "shoulders"), ("mid_shoulder", "right_shoulder", "shoulders"),
    ("mid_shoulder", "nose", "neck"), ("mid_shoulder", "left_eye", "neck"), ("mid_shoulder", "right_eye", "neck"),
    ("mid_shoulder", "left_ear", "neck"), ("mid_shoulder", "right_ear", "neck"),
    ("left_shoulder", "left_elbow", "upper_arm"), ("right_shoulder", "right_elbow", "upper_arm"),
    ("left_elbow", "left_wrist", "forearm"), ("right_elbow", "right_wrist", "forearm"),
    ("left_hip", "left_knee", "thigh"), ("right_hip", "right_knee", "thigh"),
    ("left_knee", "left_ankle", "shin"), ("right_knee", "right_ankle", "shin"),
    ("left_ankle", "left_big_toe", "foot"), ("right_ankle", "right_big_toe", "foot"),
    ("left_ankle", "left_small_toe", "foot"), ("right_ankle", "right_small_toe", "foot"),
    ("left_ankle", "left_heel", "foot"), ("right_ankle", "right_heel", "foot"),
)  # fmt: skip
"""(parent, child, group), parents before children; every keypoint is a child exactly once."""
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(g for _, _, g in SEGMENTS))


def _code(name: str) -> int:
    """A keypoint's index in `KEYPOINT_NAMES`, or a virtual point's negative code."""
    return {"mid_hip": _MID_HIP, "mid_shoulder": _MID_SHOULDER}.get(name, 0) or KEYPOINT_NAMES.index(name)


_EDGES: tuple[tuple[int, int], ...] = tuple((_code(p), _code(c)) for p, c, _ in SEGMENTS)
"""(parent, child) of every segment as keypoint indices (virtual points negative)."""
_GROUP_OF: tuple[int, ...] = tuple(GROUPS.index(g) for _, _, g in SEGMENTS)
_SHOULDERS = (KEYPOINT_NAMES.index("left_shoulder"), KEYPOINT_NAMES.index("right_shoulder"))


@dataclass(frozen=True)
class ProportionConfig:
    """Spread of the per-window segment scale factors (log-normal)."""

    sigma: float = 0.0
    """Standard deviation of log(scale) per segment group (0: no augmentation, the default until a run
    with it beats the shipped lifter on real footage; ``train-lifter --proportion-sigma 0.08``)."""
    asymmetry: float = 0.02
    """Extra standard deviation of log(scale) per segment, left and right drawn apart."""
    max_log: float = 0.25
    """log(scale) is clipped to +-this (factors within about 0.78-1.28)."""


def segment_scales(batch: int, config: ProportionConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, S) scale factor of every segment of `SEGMENTS` for `batch` windows."""
    group = torch.randn(batch, len(GROUPS), generator=gen) * config.sigma
    per = torch.randn(batch, len(SEGMENTS), generator=gen) * config.asymmetry
    return torch.exp((group[:, list(_GROUP_OF)] + per).clamp(-config.max_log, config.max_log))


def regrow(kp: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Keypoints with every segment of `SEGMENTS` scaled, grown out from the old mid-hip point.

    Args:
        kp: (B, T, K, 3) keypoints in `KEYPOINT_NAMES` order (any frame, metres).
        scales: (B, S) factors, one per segment (1: unchanged).
    Returns:
        (B, T, K, 3): each child at its new parent plus the scaled parent-to-child vector.
    """
    virtual = {_MID_HIP: kp[:, :, list(MID_HIP)].mean(2), _MID_SHOULDER: kp[:, :, list(_SHOULDERS)].mean(2)}

    def before(i: int) -> torch.Tensor:
        return virtual[i] if i < 0 else kp[:, :, i]

    new = {_MID_HIP: virtual[_MID_HIP]}
    for s, (p, c) in enumerate(_EDGES):
        new[c] = new[p] + scales[:, s, None, None] * (before(c) - before(p))
    return torch.stack([new[k] for k in range(len(KEYPOINT_NAMES))], 2)
