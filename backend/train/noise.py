"""A detector-like 2D noise model and VideoPose3D screen normalisation, batched in torch.

`add_detector_noise` turns exact projected keypoints into what a 2D detector reports:

- Gaussian jitter, per sequence a standard deviation drawn in ``jitter_frac`` of the person's box
  size (the larger side of the keypoints' bounding box in that frame), plus a small constant
  per-keypoint bias (systematic detector offset);
- occlusion dropouts: bursts of ``1 .. 2 * mean_burst - 1`` frames starting so that about
  ``drop_rate`` of keypoint-frames are missing (confidence 0, coordinates replaced by the box
  centre), and whole missed frames at ``frame_drop_rate``;
- left/right swaps of the arm or leg keypoints in ``swap_rate`` of the frames;
- confidences in [0, 1], lower for larger errors and for swapped keypoints; keypoints outside
  the image get confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backend.geometry.skeleton import KEYPOINT_NAMES, MEDIAPIPE_INDEX
from backend.lift.inputs import encode_inputs

_ARM = ("shoulder", "elbow", "wrist")
_LEG = ("hip", "knee", "ankle", "big_toe", "small_toe", "heel")


def _pairs(parts: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((KEYPOINT_NAMES.index(f"left_{p}"), KEYPOINT_NAMES.index(f"right_{p}")) for p in parts)


ARM_PAIRS = _pairs(_ARM)
LEG_PAIRS = _pairs(_LEG)
NO_DETECTOR_KEYPOINTS: tuple[int, ...] = tuple(i for i, m in enumerate(MEDIAPIPE_INDEX) if m < 0)


@dataclass(frozen=True)
class NoiseConfig:
    """Rates and sizes of the detector noise model (see the module docstring)."""

    jitter_frac: tuple[float, float] = (0.01, 0.02)
    bias_frac: float = 0.005
    drop_rate: float = 0.05
    mean_burst: int = 3
    frame_drop_rate: float = 0.01
    swap_rate: float = 0.01
    edge_margin_px: float = 0.0
    absent: tuple[int, ...] = NO_DETECTOR_KEYPOINTS
    """Keypoints the detector never reports (MediaPipe has no small toes): always missing."""


def box_size(xy: torch.Tensor) -> torch.Tensor:
    """(..., K, 2) keypoints -> (...) the larger side of their bounding box (at least 1)."""
    ext = xy.amax(-2) - xy.amin(-2)
    return ext.amax(-1).clamp(min=1.0)


def _bursts(shape: tuple[int, ...], rate: float, mean_len: int, gen: torch.Generator) -> torch.Tensor:
    """Bool mask (B, T, K) of bursts along T covering about `rate` of the entries."""
    mean_len = max(int(mean_len), 1)
    if rate <= 0:
        return torch.zeros(shape, dtype=torch.bool)
    starts = torch.rand(shape, generator=gen) < rate / mean_len
    lengths = torch.randint(1, 2 * mean_len, shape, generator=gen)
    remaining = torch.where(starts, lengths, torch.zeros_like(lengths))
    mask = remaining > 0
    for lag in range(1, min(2 * mean_len - 1, shape[1])):  # a burst of length L covers t .. t + L - 1
        mask[:, lag:] |= remaining[:, :-lag] > lag
    return mask


def add_detector_noise(
    xy: torch.Tensor, image_wh: torch.Tensor, config: NoiseConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Detector-like keypoints from exact ones.

    Args:
        xy: (B, T, K, 2) exact pixels (K = 23, ``KEYPOINT_NAMES``); image_wh: (B, 2).
        gen: the random generator (CPU).
    Returns:
        ((B, T, K, 2) noisy pixels, (B, T, K) confidences in [0, 1]).
    """
    b, t, k, _ = xy.shape
    xy = xy.float()
    box = box_size(xy)  # (B, T)
    lo, hi = config.jitter_frac
    sigma = (lo + (hi - lo) * torch.rand(b, 1, 1, 1, generator=gen)) * box[..., None, None]
    bias = config.bias_frac * torch.randn(b, 1, k, 2, generator=gen) * box[..., None, None]
    err = torch.randn(b, t, k, 2, generator=gen) * sigma + bias
    out = xy + err
    rel = err.norm(dim=-1) / sigma[..., 0]  # (B, T, K) error in units of sigma
    conf = (0.95 - 0.08 * rel + 0.05 * torch.randn(b, t, k, generator=gen)).clamp(0.05, 1.0)

    # Left/right swaps of one limb group per affected frame.
    swap = torch.rand(b, t, generator=gen) < config.swap_rate
    legs = torch.rand(b, t, generator=gen) < 0.5
    perm_arm = torch.arange(k)
    perm_leg = torch.arange(k)
    for pairs, perm in ((ARM_PAIRS, perm_arm), (LEG_PAIRS, perm_leg)):
        for i, j in pairs:
            perm[i], perm[j] = j, i
    swapped_arm = out[:, :, perm_arm]
    swapped_leg = out[:, :, perm_leg]
    choice = torch.where(legs[..., None, None], swapped_leg, swapped_arm)
    moved = torch.where(legs[..., None], perm_leg != torch.arange(k), perm_arm != torch.arange(k))
    out = torch.where(swap[..., None, None], choice, out)
    conf = torch.where(swap[..., None] & moved, conf * 0.6, conf)

    # Occlusion bursts, missed frames and keypoints outside the image.
    drop = _bursts((b, t, k), config.drop_rate, config.mean_burst, gen)
    drop |= (torch.rand(b, t, 1, generator=gen) < config.frame_drop_rate).expand(b, t, k)
    m = config.edge_margin_px
    wh = image_wh.float()[:, None, None, :]
    outside = ((xy < -m) | (xy > wh + m)).any(-1)
    drop |= outside
    if config.absent:
        drop[..., list(config.absent)] = True
    centre = xy.mean(-2, keepdim=True).expand_as(out)
    out = torch.where(drop[..., None], centre, out)
    conf = torch.where(drop, torch.zeros_like(conf), conf)
    return out, conf


def observe(
    xy: torch.Tensor, image_wh: torch.Tensor, config: NoiseConfig | None, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the detector reports for exact pixels (B, T, K, 2): (pixels, confidences (B, T, K)).

    config None: the exact keypoints with confidence 1, except those the detector never reports (0).
    """
    if config is not None:
        return add_detector_noise(xy, image_wh, config, gen)
    conf = torch.ones(xy.shape[:-1])
    conf[..., list(NO_DETECTOR_KEYPOINTS)] = 0.0
    return xy.float(), conf


def detector_inputs(
    xy: torch.Tensor,
    image_wh: torch.Tensor,
    config: NoiseConfig | None,
    gen: torch.Generator,
    input_norm: str = "screen",
    in_features: int = 3,
) -> torch.Tensor:
    """Lifter inputs (B, T, K', in_features) from exact pixels (B, T, K, 2): `observe`, then `encode_inputs`."""
    noisy, conf = observe(xy, image_wh, config, gen)
    return encode_inputs(noisy, conf, image_wh.float(), input_norm, in_features)
