"""Long clips: the fit in overlapping windows with one shape, joined without a seam (``fit/windows.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch

from backend.config import FitConfig, FitSchedule, WindowConfig, with_setting
from backend.errors import BadInput
from backend.fit.optimize import TemporalFitter
from backend.fit.windows import blend_rotations, fit_windowed, ramp, spans
from tests.test_fit import LH, RH, _synthetic


def test_windows_cover_the_clip_with_the_overlap() -> None:
    assert spans(900, WindowConfig(900, 30)) == [(0, 900)]
    for t in (901, 1000, 2500, 3001):
        windows = spans(t, WindowConfig(900, 30))
        assert windows[0][0] == 0 and windows[-1][1] == t
        for (a0, b0), (a1, b1) in zip(windows, windows[1:], strict=False):
            assert b0 - a1 >= 30 and a1 > a0 and b1 > b0  # each join shares at least the overlap
        assert max(b - a for a, b in windows) < 1.5 * 900 and min(b - a for a, b in windows) >= 450
    with pytest.raises(BadInput, match="overlap"):
        with_setting(FitConfig(), "windows.overlap=500")


def test_ramp_and_rotation_blend_are_smooth_and_exact_at_the_ends() -> None:
    w = ramp(20)
    assert 0.0 < w[0] < 0.01 and 0.99 < w[-1] < 1.0 and np.all(np.diff(w) > 0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 21, 3)), rng.normal(size=(20, 21, 3))
    assert np.allclose(blend_rotations(a, a, w), roma.unitquat_to_rotvec(roma.rotvec_to_unitquat(torch.as_tensor(a))).numpy())
    ends = blend_rotations(a, b, np.array([0.0] * 10 + [1.0] * 10))
    same = lambda x, y: roma.rotmat_geodesic_distance(*(roma.rotvec_to_rotmat(torch.as_tensor(v)) for v in (x, y)))  # noqa: E731
    assert same(ends[:10], a[:10]).max() < 1e-9 and same(ends[10:], b[10:]).max() < 1e-9


def _rel(x: np.ndarray) -> np.ndarray:
    return x - 0.5 * (x[:, LH : LH + 1] + x[:, RH : RH + 1])


def test_windowed_fit_matches_the_whole_clip_fit_without_a_seam(anny_body) -> None:
    """Three windows of 30 frames (overlap 10) against one fit of all 60: the same accuracy, one shape,
    and no jump at the joins larger than the clip's own frame-to-frame motion."""
    inputs, kp, _, _ = _synthetic(anny_body, t=60)
    cfg = FitConfig(schedule=FitSchedule(iters_global=20, iters_pose3d=60, iters_body=80, iters_all=40,
                                         iters_contact=0))  # fmt: skip
    fitter = TemporalFitter(anny_body, cfg, torch.device("cpu"))
    whole = fitter.fit(inputs, lambda e: None, lambda: False)
    events: list[dict] = []
    windowed = fit_windowed(fitter, inputs, events.append, lambda: False, WindowConfig(frames=30, overlap=10))
    assert windowed.stats["windows"] == [[0, 30], [20, 50], [40, 60]]
    assert windowed.keypoints3d.shape == kp.shape and windowed.native_pose.shape == whole.native_pose.shape
    error = {name: 1000 * np.linalg.norm(_rel(r.keypoints3d) - _rel(kp), axis=-1).mean()
             for name, r in (("whole", whole), ("windowed", windowed))}  # fmt: skip
    step = np.linalg.norm(np.diff(windowed.keypoints3d, axis=0), axis=-1).max(-1)  # (T-1,) largest joint move
    truth_step = np.linalg.norm(np.diff(kp, axis=0), axis=-1).max(-1)
    seams = [19, 20, 29, 30, 39, 40, 49, 50]  # the steps at the overlaps' ends
    print(f"root-relative MPJPE mm {error}; largest joint step at the joins {step[seams].max() * 1000:.1f} mm, "
          f"the truth's largest step {truth_step.max() * 1000:.1f} mm")
    # (each window turns the lift onto its body by its own rotation, ``align_3d``: 30 mm, 29 matched as it is)
    assert abs(error["windowed"] - error["whole"]) < 5.0 and error["windowed"] < 34.0
    assert step[seams].max() <= 1.2 * truth_step.max()
    progress = [e for e in events if e.get("event") == "progress"]
    assert progress and all(e["total"] == 3000 for e in progress) and progress[-1]["done"] <= 3000
