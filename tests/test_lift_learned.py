"""The learned lifter's input encoding, weight loading errors and the lift stage around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.detect.types import SubjectTrack
from backend.errors import BadInput
from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.lift.checkpoints import save_lifter_checkpoint
from backend.lift.inputs import encode_inputs, person_features
from backend.lift.learned import LearnedLifter, load_default_lifter
from backend.lift.videopose import TemporalLifter, TemporalLifterConfig

K = len(KEYPOINT_NAMES)


def _pose(t: int = 5, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 300.0 + 100.0 * torch.rand(1, t, K, 2, generator=gen)


def test_person_encoding_ignores_where_and_how_big_the_person_is() -> None:
    xy = _pose()
    conf = torch.ones(1, 5, K)
    wh = torch.tensor([[1000.0, 800.0]])
    a = person_features(xy, conf, wh)
    b = person_features(2.0 * xy + torch.tensor([150.0, -40.0]), conf, wh)
    assert a.shape == (1, 5, K + 1, 3)
    assert torch.allclose(a[..., :K, :], b[..., :K, :], atol=1e-5)
    # The pseudo keypoint carries the root position and the box size, which did change.
    assert not torch.allclose(a[..., K, :], b[..., K, :])
    hips = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
    assert torch.allclose(a[..., hips, :2].mean(-2), torch.zeros(2), atol=1e-6)


def test_person_encoding_zeroes_missing_keypoints_and_frames() -> None:
    xy = _pose()
    conf = torch.ones(1, 5, K)
    conf[0, 1, 3] = 0.0
    conf[0, 2] = 0.0
    far = xy.clone()
    far[0, 1, 3] = -5000.0  # a missing keypoint's coordinates must not matter
    feats = person_features(far, conf, torch.tensor([[1000.0, 800.0]]))
    ref = person_features(xy, conf, torch.tensor([[1000.0, 800.0]]))
    assert torch.equal(feats, ref)
    assert torch.all(feats[0, 1, 3] == 0)
    assert torch.all(feats[0, 2] == 0)
    assert encode_inputs(xy, conf, torch.tensor([[1000.0, 800.0]]), "screen", 2).shape == (1, 5, K, 2)
    with pytest.raises(ValueError, match="input_norm"):
        encode_inputs(xy, conf, torch.tensor([[1000.0, 800.0]]), "pixels", 3)


def test_missing_and_wrong_lifter_weights_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not found at .*nope.pt.*--lifter mediapipe"):
        load_default_lifter(tmp_path / "nope.pt")
    wrong = TemporalLifter(TemporalLifterConfig(num_joints_in=17, num_joints_out=17, filter_widths=(3,)))
    path = save_lifter_checkpoint(tmp_path / "h36m.pt", wrong)
    with pytest.raises(BadInput, match="17 input / 17 output"):
        load_default_lifter(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BadInput):
        load_default_lifter(tmp_path / "junk.pt")


def test_learned_lifter_lifts_a_track_with_gaps(tmp_path: Path) -> None:
    cfg = TemporalLifterConfig(
        num_joints_in=K + 1, num_joints_out=K, in_features=3, filter_widths=(3, 3), channels=16,
        input_norm="person",
    )  # fmt: skip
    path = save_lifter_checkpoint(tmp_path / "l.pt", TemporalLifter(cfg))
    model = load_default_lifter(path)
    t = 12
    rng = np.random.default_rng(0)
    body2d = np.concatenate([300 + 100 * rng.random((t, 33, 2)), np.full((t, 33, 1), 0.9)], -1)
    valid = np.ones(t, bool)
    valid[4:6] = False
    body2d[~valid] = 0.0
    zeros = np.zeros
    track = SubjectTrack(
        track_id=0, frame_index=np.arange(t), time_s=np.arange(t) / 30.0, valid=valid,
        body2d=body2d.astype(np.float32), body_world=zeros((t, 33, 3)), left_hand2d=zeros((t, 21, 3)),
        right_hand2d=zeros((t, 21, 3)), face2d=zeros((t, 468, 3)), bbox=zeros((t, 4)),
        silhouette=zeros((t, 64, 64), np.uint8),
    )  # fmt: skip
    result = LearnedLifter(model, (640, 480)).lift(track)
    assert result.keypoints3d.shape == (12, K, 3) and result.keypoints3d.dtype == np.float32
    assert np.isfinite(result.keypoints3d).all()
    assert result.confidence.shape == (12, K)
    assert (result.confidence[4:6] < result.confidence[3]).all()


def test_missing_prior_weights_fail_before_any_work(tmp_path: Path) -> None:
    from backend.config import LiftConfig
    from backend.pipeline.models import load_models

    with pytest.raises(BadInput, match="prior weights not found at .*none.pt.*--prior none"):
        load_models(LiftConfig(method="mediapipe", prior_weights=str(tmp_path / "none.pt")))
    models = load_models(LiftConfig(method="mediapipe", prior="none"))
    assert models.lifter is None and models.prior is None
    shipped = load_models(LiftConfig(method="mediapipe"))
    assert shipped.prior is not None and shipped.prior.config.num_joints == 21
