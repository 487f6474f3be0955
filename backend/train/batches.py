"""Training batches of the lifter: windows of synthetic sequences, with fixed or freshly drawn cameras.

`sample_windows` cuts windows out of `LifterPairs` (pixels and 3D precomputed per fixed view);
`sample_fresh_windows` cuts them out of `WorldSequences` and puts a new random camera in front of each
(`views.random_views`). Both return `Windows` of the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.train.proportions import ProportionConfig, regrow, segment_scales
from backend.train.synth import MID_HIP, LifterPairs, SynthConfig
from backend.train.views import WorldSequences, random_views


def _window_indices(
    starts_np: np.ndarray, batch: int, chunk: int, receptive: int, gen: torch.Generator, causal: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sequence (B,), input frame indices (B, chunk + R - 1), output frame indices (B, chunk)).

    Frames beyond a sequence's ends repeat its first / last frame; the output frame sits at the centre
    of its input window, or at its end when `causal`.
    """
    starts = torch.as_tensor(starts_np)
    seq = torch.randint(len(starts) - 1, (batch,), generator=gen)
    length = starts[seq + 1] - starts[seq]
    first = (torch.rand(batch, generator=gen) * (length - chunk).clamp(min=1)).long()
    before = receptive - 1 if causal else (receptive - 1) // 2
    offs = torch.arange(chunk + receptive - 1) - before
    idx_in = (first[:, None] + offs[None]).clamp(min=0)
    idx_in = torch.minimum(idx_in, (length - 1)[:, None]) + starts[seq][:, None]
    idx_out = (
        torch.minimum(first[:, None] + torch.arange(chunk)[None], (length - 1)[:, None])
        + starts[seq][:, None]
    )
    return seq, idx_in, idx_out


@dataclass(frozen=True)
class Windows:
    """A training batch: exact pixels (B, chunk + R - 1, K, 2), image sizes (B, 2), focal (B,),
    root-relative targets (B, chunk, K, 3) and camera-frame roots (B, chunk, 1, 3), metres;
    ``xy_out`` (B, chunk, K, 2): the exact pixels of the output frames."""

    xy: torch.Tensor
    image_wh: torch.Tensor
    focal: torch.Tensor
    pose: torch.Tensor
    root: torch.Tensor
    xy_out: torch.Tensor


def sample_windows(
    pairs: LifterPairs, batch: int, chunk: int, receptive: int, gen: torch.Generator, causal: bool = False
) -> Windows:
    """Random training windows of `chunk` output frames and their ``chunk + R - 1`` input frames
    (see `_window_indices`), seen from the pairs' own fixed cameras."""
    seq, idx_in, idx_out = _window_indices(pairs.starts, batch, chunk, receptive, gen, causal)
    kp = pairs.kp3d[idx_out.numpy()]
    root = kp[..., list(MID_HIP), :].mean(-2, keepdims=True)
    return Windows(
        xy=torch.as_tensor(pairs.xy)[idx_in],
        image_wh=torch.as_tensor(pairs.image_wh)[seq],
        focal=torch.as_tensor(pairs.focal)[seq],
        pose=torch.as_tensor(kp - root),
        root=torch.as_tensor(root),
        xy_out=torch.as_tensor(pairs.xy)[idx_out],
    )


def sample_fresh_windows(
    seqs: WorldSequences,
    batch: int,
    chunk: int,
    receptive: int,
    synth: SynthConfig,
    gen: torch.Generator,
    causal: bool = False,
    proportions: ProportionConfig | None = None,
) -> Windows:
    """Random training windows as `sample_windows`, each seen by a new random camera (`random_views`
    with the ranges of `synth`) and, with `proportions`, re-grown to other body proportions
    (`proportions.regrow`, before the camera sees it). The output frames are the input window's frames
    ``before .. before + chunk`` (the same edge repetition), so their camera is the one the input
    frames saw."""
    _, idx_in, _ = _window_indices(seqs.starts, batch, chunk, receptive, gen, causal)
    world = torch.as_tensor(seqs.kp_world)[idx_in]
    if proportions is not None and proportions.sigma > 0:
        world = regrow(world, segment_scales(batch, proportions, gen))
    views = random_views(world, synth, gen)
    before = receptive - 1 if causal else (receptive - 1) // 2
    kp = views.kp_cam[:, before : before + chunk]
    root = kp[..., list(MID_HIP), :].mean(-2, keepdim=True)
    return Windows(
        xy=views.xy,
        image_wh=views.image_wh,
        focal=views.focal,
        pose=kp - root,
        root=root,
        xy_out=views.xy[:, before : before + chunk],
    )
