"""The lifter's proportion augmentation: segments re-grown by their factors, windows that stay consistent."""

from __future__ import annotations

import dataclasses

import torch

from backend.geometry.camera import project
from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.train.batches import sample_fresh_windows
from backend.train.proportions import GROUPS, SEGMENTS, ProportionConfig, regrow, segment_scales
from backend.train.synth import MID_HIP, SynthConfig
from backend.train.views import synthesize_world
from tests.test_train import _clipset

_I = KEYPOINT_NAMES.index


def _length(kp: torch.Tensor, a: str, b: str) -> torch.Tensor:
    return (kp[..., _I(a), :] - kp[..., _I(b), :]).norm(dim=-1)


def test_every_keypoint_is_regrown_once_and_ones_change_nothing() -> None:
    children = [c for _, c, _ in SEGMENTS if c in KEYPOINT_NAMES]
    assert sorted(children) == sorted(KEYPOINT_NAMES)
    kp = torch.randn(2, 4, len(KEYPOINT_NAMES), 3)
    torch.testing.assert_close(regrow(kp, torch.ones(2, len(SEGMENTS))), kp)


def test_each_segment_takes_its_own_factor_and_the_hips_stay() -> None:
    kp = torch.randn(3, 5, len(KEYPOINT_NAMES), 3)
    config = ProportionConfig(sigma=0.1, asymmetry=0.0)
    scales = segment_scales(3, config, torch.Generator().manual_seed(1))
    out = regrow(kp, scales)
    for s, (parent, child, _) in enumerate(SEGMENTS):
        if parent in KEYPOINT_NAMES:
            ratio = _length(out, parent, child) / _length(kp, parent, child)
            torch.testing.assert_close(ratio, scales[:, s, None].expand_as(ratio), atol=1e-4, rtol=0)
    hips = list(MID_HIP)
    torch.testing.assert_close(out[:, :, hips].mean(2), kp[:, :, hips].mean(2), atol=1e-5, rtol=0)
    # Without asymmetry, left and right of a group grow alike; the torso (hip to shoulder centre) too.
    upper = [s for s, (_, _, g) in enumerate(SEGMENTS) if g == "upper_arm"]
    torch.testing.assert_close(scales[:, upper[0]], scales[:, upper[1]])
    torso = [s for s, (_, _, g) in enumerate(SEGMENTS) if g == "torso"][0]
    mid = lambda p, a, b: (p[:, :, _I(a)] + p[:, :, _I(b)]) / 2  # noqa: E731
    ratio = (mid(out, "left_shoulder", "right_shoulder") - mid(out, "left_hip", "right_hip")).norm(dim=-1) / (
        mid(kp, "left_shoulder", "right_shoulder") - mid(kp, "left_hip", "right_hip")
    ).norm(dim=-1)
    torch.testing.assert_close(ratio, scales[:, torso, None].expand_as(ratio), atol=1e-4, rtol=0)


def test_scales_spread_as_configured_and_stay_bounded() -> None:
    config = ProportionConfig(sigma=0.08, asymmetry=0.02, max_log=0.25)
    logs = torch.log(segment_scales(20000, config, torch.Generator().manual_seed(0)))
    assert len(GROUPS) == 9 and logs.shape == (20000, len(SEGMENTS))
    assert abs(float(logs.std()) - (0.08**2 + 0.02**2) ** 0.5) < 0.005
    assert abs(float(logs.mean())) < 0.005
    assert float(logs.abs().max()) <= 0.25 + 1e-6


def test_regrown_windows_show_their_own_3d_and_vary_the_proportions(anny_body) -> None:
    config = SynthConfig(segment_frames=40, views=1, n_phenotypes=2, with_mirror=False, seed=5)
    seqs = synthesize_world(_clipset(), anny_body, config)
    plain = sample_fresh_windows(seqs, 64, 5, 9, config, torch.Generator().manual_seed(3))
    grown = sample_fresh_windows(
        seqs, 64, 5, 9, config, torch.Generator().manual_seed(3), False, ProportionConfig(sigma=0.08)
    )
    for b in (0, 31):  # the targets are the 3D that these pixels show
        k = torch.tensor([[grown.focal[b], 0, grown.image_wh[b, 0] / 2], [0, grown.focal[b], grown.image_wh[b, 1] / 2],
                          [0, 0, 1]])  # fmt: skip
        torch.testing.assert_close(
            project(grown.pose[b] + grown.root[b], k), grown.xy_out[b], atol=1e-2, rtol=0
        )

    # Two bodies only: without the augmentation forearm / shin varies little (two bodies; keypoints on
    # the skin move a little as the joints bend); with it, about as the factors spread (0.12).
    def spread(w) -> float:
        ratio = _length(w.pose, "left_elbow", "left_wrist") / _length(w.pose, "left_knee", "left_ankle")
        return float(ratio[:, 0].log().std())

    assert spread(grown) > 0.09 and spread(grown) > 2.0 * spread(plain)
    off = dataclasses.replace(ProportionConfig(sigma=0.08), sigma=0.0)
    again = sample_fresh_windows(seqs, 64, 5, 9, config, torch.Generator().manual_seed(3), False, off)
    torch.testing.assert_close(again.pose, plain.pose)
