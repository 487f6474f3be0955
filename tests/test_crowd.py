"""Issue 16's crowd bench: identities matched frame by frame against rendered people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.crowd import MP_TORSO, TORSO, CrowdTruth, identity_stats, match_people


def _truth(t: int = 10) -> CrowdTruth:
    """Two true people: one at x = 100, one at x = 300 (torso 100 px tall), the second leaving at t = 8."""
    kp = np.zeros((2, t, 23, 2), np.float32)
    for n, x in enumerate((100.0, 300.0)):
        kp[n][:, TORSO] = [(x - 20, 100), (x + 20, 100), (x - 15, 200), (x + 15, 200)]
    in_front = np.ones((2, t), bool)
    in_front[1, 8:] = False
    return CrowdTruth(Path("none.mp4"), kp, in_front)


def _body(xs: list[float]) -> np.ndarray:
    """(T, 33, 3) MediaPipe landmarks whose torso sits at each frame's x."""
    body = np.zeros((len(xs), 33, 3), np.float32)
    for t, x in enumerate(xs):
        body[t, MP_TORSO, :2] = [(x - 20, 100), (x + 20, 100), (x - 15, 200), (x + 15, 200)]
    return body


def test_frames_match_the_nearest_true_person_within_half_a_torso() -> None:
    truth = _truth()
    xs = [100, 104, 300, 300, 100, 100, 200, 100, 300, 300]  # a swap at 2-3, nobody near at 6, gone at 8-9
    valid = np.ones(10, bool)
    valid[7] = False
    matched = match_people(_body(xs), valid, truth)
    assert matched.tolist() == [0, 0, 1, 1, 0, 0, -1, -1, -1, -1]
    stats = identity_stats(matched)
    assert stats == {"switches": 2, "follows": 0, "own_share": pytest.approx(4 / 6), "matched_frames": 6}
    assert identity_stats(np.full(5, -1))["matched_frames"] == 0


def test_two_people_crossing_keep_their_identities(anny_body, tmp_path: Path) -> None:  # noqa: ANN001
    """A rendered crossing (the front walker hides the other): both tracked, no identity switch, each
    output person on their own true person in every matched frame."""
    pytest.importorskip("bpy")
    pytest.importorskip("mediapipe")
    from backend.train.data import DataConfig, load_clipset
    from bench.crowd import CI_CROWD, rendered_crowd, score_case

    try:
        clips = load_clipset("test", DataConfig())
    except FileNotFoundError:
        pytest.skip("no held-out mocap clips (../shared/mocap) and no cached clip set")
    truth = rendered_crowd(CI_CROWD, clips, tmp_path, lambda: anny_body)
    assert truth.keypoints2d.shape == (2, 72, 23, 2) and truth.in_front.mean() > 0.9
    row = score_case(CI_CROWD, truth)
    assert row["tracks"] == 2 and row["true_people_followed"] == 2
    for person in row["all"].values():
        assert person["switches"] == 0 and person["own_share"] == 1.0 and person["matched_frames"] >= 40
