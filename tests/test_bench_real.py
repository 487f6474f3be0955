"""The real-footage bench: its scoring (synthetic, exact) and one real view run through the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from bench import metrics
from bench.real import DEFAULT_DATA, RealBenchConfig, View, load_views, markdown_table, run_view, score

NAMES = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
         "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")  # fmt: skip


def _view(joints: np.ndarray) -> View:
    k = np.array([[1000.0, 0, 540], [0, 1000.0, 960], [0, 0, 1]])
    return View("synthetic", Path("none.mp4"), joints, NAMES, k, 60.0, joints.copy())


def _walk(t: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.3, (len(NAMES), 3)) + np.array([0, 0, 3.0])
    drift = np.linspace(0, 0.2, t)[:, None, None] * np.array([1.0, 0, 0])
    return base[None] + drift + 0.01 * np.sin(np.arange(t))[:, None, None]


def test_scores_are_zero_for_the_truth_and_ignore_what_they_should() -> None:
    gt = _walk()
    view, frames = _view(gt), np.ones(len(gt), bool)
    exact = score(gt, view, frames, absolute=True)
    assert exact["pa_mm"] < 1e-6 and exact["ra_mm"] < 1e-6 and exact["accel_mm"] < 1e-6
    rot = roma.rotvec_to_rotmat(torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)).numpy()
    moved = gt @ rot.T + np.array([0.5, 0.1, 1.0])
    rigid = score(moved, view, frames, absolute=False)
    assert rigid["pa_mm"] < 1e-6 and rigid["ra_mm"] < 1e-6 and rigid["skate_mm"] is None
    bigger = score(gt * 1.2, view, frames, absolute=False)  # a scaled body: PA forgives it, RA does not
    assert bigger["pa_mm"] < 1e-6 and bigger["ra_mm"] > 10.0


def test_limbs_and_skating_measure_their_own_joints_and_frames() -> None:
    gt = _walk(t=30)
    gt[:, NAMES.index("left_ankle")] = gt[0, NAMES.index("left_ankle")]  # a planted foot
    view, frames = _view(gt), np.ones(len(gt), bool)
    pred = gt.copy()
    pred[:, NAMES.index("left_ankle"), 0] += 0.004 * np.arange(30)  # slides 4 mm per frame
    result = score(pred, view, frames, absolute=True)
    assert result["skate_mm"] == pytest.approx(4.0, abs=0.2)
    wrists = pred.copy()
    wrists[:, NAMES.index("left_wrist")] += 0.1
    s = score(wrists, view, frames, absolute=True)
    assert s["pa_limbs_mm"] > s["pa_mm"] > 0  # the error sits on a limb joint
    assert metrics.ra_mpjpe(pred, gt).shape == (30,)


def test_markdown_table_lists_every_row_with_the_mean_over_views() -> None:
    row = {"pa_mm": 10.0, "pa_limbs_mm": 12.0, "ra_mm": 20.0, "accel_mm": 1.0, "skate_mm": None, "frames": 10,
           "on_person_pct": 100.0}
    table = markdown_table({"a": {"pipeline": row}, "b": {"pipeline": {**row, "pa_mm": 30.0}}})
    assert "| pipeline | 10.0 | 30.0 | 20.0 | 12.0 | 20.0 | 1.0 | n/a | 100.0 |" in table


def test_one_real_view_beats_mediapipes_own_3d() -> None:
    """cam01 of the realbench (1.7 s of a real person; calibrated ground truth) through the default
    pipeline without intrinsics: its 3D must be closer to the truth and far smoother than the detector's."""
    if not (DEFAULT_DATA / "gt.npz").is_file():
        pytest.skip(f"no realbench at {DEFAULT_DATA} (the shared data folder)")
    (view,) = load_views(DEFAULT_DATA, ("cam01",))
    rows = run_view(view, RealBenchConfig(views=("cam01",), intrinsics="none", rows=("default",)))
    ours, theirs = rows["pipeline, default"], rows["MediaPipe world landmarks (realbench reference)"]
    assert ours["frames"] >= 95
    assert ours["pa_mm"] < theirs["pa_mm"], rows
    assert ours["accel_mm"] < theirs["accel_mm"] / 5, rows
    order = rows["oracle: default with the truth's depth order"]  # on the same frames as the default
    assert order["frames"] == ours["frames"] and 0.0 <= order["flipped_pct"] < 100.0
    assert rows["oracle: default with the truth's bone lengths"]["ra_mm"] < ours["ra_mm"], rows  # his size


def test_only_frames_on_the_true_person_are_scored_and_the_nearest_person_is_picked() -> None:
    """A fitted track that turns into someone else half way: those frames are not scored as 3D error,
    and of two fitted people the one whose 2D lies on the truth's projection is the one scored."""
    from backend.detect.types import MP_BODY_NAMES
    from backend.io.motion import PersonMotion
    from bench.real import FOLLOW_FRACTION, image_distance, image_errors

    gt = _walk(t=20)
    gt[:, :, 1] += np.linspace(-0.8, 0.8, len(NAMES))[None]  # a standing person, 1.6 m tall
    gt[5:8] = np.nan  # the truth is unknown there
    view = _view(gt)
    truth_2d = metrics.project_points(np.nan_to_num(gt), view.intrinsics)

    def person(shift_px: np.ndarray) -> PersonMotion:
        kp = np.zeros((20, len(MP_BODY_NAMES), 3))
        for j, name in enumerate(NAMES):
            kp[:, MP_BODY_NAMES.index(name), :2] = truth_2d[:, j] + shift_px
        return PersonMotion(0, {"frame_index": np.arange(20), "valid": np.ones(20, bool), "keypoints2d": kp})

    drift = np.zeros((20, 2))
    drift[12:, 0] = 400.0  # from frame 12 the track follows someone else
    switching = image_errors(person(drift), view) < FOLLOW_FRACTION
    assert switching[:5].all() and not switching[5:8].any() and switching[8:12].all() and not switching[12:].any()
    elsewhere = person(np.full((20, 2), 300.0))
    assert image_distance(person(np.zeros((20, 2))), view) < 1e-6 < image_distance(elsewhere, view)
