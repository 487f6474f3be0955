"""Training views drawn fresh for every batch: world-frame keypoints once, random cameras per window.

`synthesize_world` poses Anny by every segment of every clip (and its mirror image) under
``SynthConfig.views`` random plausible phenotypes and keeps the keypoints in the canonical world frame
(y up, metres, floor at y = 0). `random_views` then puts one random, slowly moving camera in front of
each training window, with the ranges of `SynthConfig` (height, distance, aim, roll, drift, follow,
focal length, aspect ratio), so that no pose is tied to the few views it was synthesised with: the
lifter sees every motion from ever new heights and directions (a camera 3 m up looking down 40 deg,
one on the floor looking up). Vectorised in torch over the windows of a batch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from backend.body.model import CanonicalPose
from backend.train.data import ClipSet
from backend.train.synth import (
    MID_HIP,
    SynthConfig,
    cached_arrays,
    default_body,
    look_at_torch,
    pairs_hash,
    rest_states,
    root_relative,
    segments,
)

if TYPE_CHECKING:
    from backend.body.anny_body import AnnyBody

log = logging.getLogger(__name__)

WORLD_VERSION = 1


@dataclass(frozen=True)
class WorldSequences:
    """Keypoint sequences in the canonical world frame, concatenated.

    kp_world: (N, K, 3) float32 metres, y up, floor at y = 0; starts: (S+1,) int64 sequence offsets;
    data_hash: hash of the clip list and the synthesis config.
    """

    kp_world: np.ndarray
    starts: np.ndarray
    data_hash: str

    @property
    def n_sequences(self) -> int:
        return len(self.starts) - 1

    def targets(self) -> np.ndarray:
        """(N, K, 3) root-relative (mid-hip) keypoints in world axes (for bone-length statistics)."""
        return root_relative(self.kp_world)


def synthesize_world(clips: ClipSet, body: AnnyBody, config: SynthConfig) -> WorldSequences:
    """World keypoints of every segment (`synth.segments`), once per each of ``config.views`` random
    phenotypes. Deterministic for config.seed."""
    rng = np.random.default_rng(config.seed)
    rests = rest_states(body, config, rng)
    out, lengths = [], []
    for rot, tr in segments(clips, config):
        posed = CanonicalPose(*(torch.as_tensor(x, dtype=torch.float32) for x in (rot[:, 0], rot[:, 1:], tr)))
        for _ in range(config.views):
            with torch.no_grad():
                out.append(body.keypoints_fast(posed, rests[int(rng.integers(len(rests)))]).numpy())
            lengths.append(len(rot))
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    log.info(
        "synthesised %d world sequences, %d frames from %d clips", len(lengths), starts[-1], clips.n_clips
    )
    return WorldSequences(np.concatenate(out).astype(np.float32), starts, world_hash(clips, config))


def world_hash(clips: ClipSet, config: SynthConfig) -> str:
    """Data hash of world sequences: `pairs_hash` and this module's version."""
    return pairs_hash(clips, config) + f"w{WORLD_VERSION}"


def load_or_synthesize_world(
    clips: ClipSet, config: SynthConfig, cache_dir: Path, body: AnnyBody | None = None
) -> WorldSequences:
    """`synthesize_world` with a ``.npz`` cache in `cache_dir` (``world_<split>_<hash>.npz``)."""
    data_hash = world_hash(clips, config)

    def build() -> dict[str, np.ndarray]:
        seqs = synthesize_world(clips, body if body is not None else default_body(), config)
        return {"kp_world": seqs.kp_world, "starts": seqs.starts}

    arrays = cached_arrays(Path(cache_dir) / f"world_{clips.split}_{data_hash}.npz", build)
    return WorldSequences(arrays["kp_world"], arrays["starts"], data_hash)


def _uniform(bounds: tuple[float, float], n: int, gen: torch.Generator) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _smooth_time(x: torch.Tensor, width: int) -> torch.Tensor:
    """Moving average over axis 1 of (B, T, D) with edge replication."""
    half = max(min(width, x.shape[1]) // 2, 0)
    if half == 0:
        return x
    padded = torch.nn.functional.pad(x.transpose(1, 2), (half, half), mode="replicate")
    return torch.nn.functional.avg_pool1d(padded, 2 * half + 1, stride=1).transpose(1, 2)


@dataclass(frozen=True)
class Views:
    """One random camera per window: keypoints in camera axes (B, T, K, 3), pixels (B, T, K, 2),
    focal (B,) px, image sizes (B, 2) (width, height), camera-from-world rotations (B, T, 3, 3) and
    camera centres (B, T, 3) in world axes."""

    kp_cam: torch.Tensor
    xy: torch.Tensor
    focal: torch.Tensor
    image_wh: torch.Tensor
    rotation: torch.Tensor
    eye: torch.Tensor


def random_views(
    kp_world: torch.Tensor, config: SynthConfig, gen: torch.Generator, fps: float = 30.0
) -> Views:
    """A random slowly moving camera per window of world keypoints (B, T, K, 3), as `synth.random_camera`
    draws them: ``cam_distance`` from the window's mean pelvis at a random azimuth, ``cam_height`` above
    the floor, aimed at ``aim_height`` and following the (1 s smoothed) pelvis by a share ``follow``."""
    b, t = kp_world.shape[:2]
    pelvis = kp_world[:, :, list(MID_HIP)].mean(2)  # (B, T, 3)
    centre = pelvis.mean(1)
    azim, dist = 2 * math.pi * torch.rand(b, generator=gen), _uniform(config.cam_distance, b, gen)
    eye0 = torch.stack([centre[:, 0] + dist * torch.sin(azim), _uniform(config.cam_height, b, gen),
                        centre[:, 2] + dist * torch.cos(azim)], -1)  # fmt: skip
    heading, speed = 2 * math.pi * torch.rand(b, generator=gen), _uniform((0.0, config.drift_mps), b, gen)
    vel = speed[:, None] * torch.stack(
        [torch.cos(heading), _uniform((-0.2, 0.2), b, gen), torch.sin(heading)], -1
    )
    time = torch.arange(t, dtype=torch.float32) / fps
    eye = eye0[:, None] + vel[:, None] * time[None, :, None]
    aim = torch.stack([centre[:, 0], _uniform(config.aim_height, b, gen), centre[:, 2]], -1)
    follow = _uniform(config.follow, b, gen)[:, None, None]
    smooth = _smooth_time(pelvis, int(fps))
    target = aim[:, None].expand(b, t, 3).clone()
    target[..., [0, 2]] += follow * (smooth[..., [0, 2]] - aim[:, None, [0, 2]])
    roll0 = torch.deg2rad(_uniform((-config.roll_deg, config.roll_deg), b, gen))
    wobble = _uniform((0.02, 0.1), b, gen)[:, None]
    roll = roll0[:, None] + math.radians(0.5) * torch.sin(2 * math.pi * wobble * time[None])
    rot = look_at_torch(eye, target, roll)  # (B, T, 3, 3)
    kp_cam = torch.einsum("btij,btkj->btki", rot, kp_world - eye[:, :, None])
    pelvis_depth = kp_cam[:, :, list(MID_HIP), 2].mean(-1).amin(1)  # (B,)
    back = (config.min_depth - pelvis_depth).clamp(min=0.0)  # keep the subject in front: step back
    kp_cam[..., 2] += back[:, None, None]
    eye = eye - back[:, None, None] * rot[:, :, 2]
    focal = _uniform(config.focal_px, b, gen)
    aspects = torch.tensor(config.aspects, dtype=torch.float32)[
        torch.randint(len(config.aspects), (b,), generator=gen)
    ]
    image_wh = torch.stack(
        [torch.round(config.image_height * aspects), torch.full((b,), float(config.image_height))], -1
    )
    xy = (
        kp_cam[..., :2] / kp_cam[..., 2:].clamp(min=0.05) * focal[:, None, None, None]
        + image_wh[:, None, None] / 2
    )
    return Views(kp_cam, xy, focal, image_wh, rot, eye)
