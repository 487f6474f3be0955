"""The accuracy bench: metrics, cases, the Blender camera against our projection, and (slow) the CI run."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.errors import BadInput
from backend.geometry.frames import FOOT_POINTS
from backend.geometry.skeleton import KEYPOINT_NAMES, MEDIAPIPE_INDEX
from backend.io.motion import PersonMotion
from bench import metrics
from bench.accuracy import EVAL_KEYPOINTS, BenchConfig, evaluate_person, markdown_table, pooled
from bench.cases import AVERAGE, CI_CASES, FULL_CASES, BenchCase
from bench.planted_feet import contact_runs, spreads_mm
from bench.render import RenderedCase, face_regions, render_frames, require_bpy

ROOT = Path(__file__).resolve().parents[1]


def _points(t: int = 5, k: int = 21, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(t, k, 3)) * 0.4 + np.array([0.0, 0.0, 4.0])


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_pa_mpjpe_is_zero_for_a_similar_copy_and_positive_for_a_perturbed_one() -> None:
    rng = np.random.default_rng(1)
    gt = _points()
    rot = np.stack([_random_rotation(rng) for _ in range(len(gt))])
    moved = 1.7 * np.einsum("tij,tkj->tki", rot, gt) + rng.normal(size=(len(gt), 1, 3))
    np.testing.assert_allclose(metrics.pa_mpjpe(moved, gt), 0.0, atol=1e-9)
    noisy = moved + rng.normal(scale=0.02, size=moved.shape)
    err = metrics.pa_mpjpe(noisy, gt)
    assert err.shape == (len(gt),) and (err > 1e-3).all()
    assert (err <= metrics.mpjpe_root_aligned(noisy, gt) + 1e-9).all()  # alignment only helps


def test_pa_mpjpe_does_not_reflect() -> None:
    gt = _points()
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert (metrics.pa_mpjpe(mirrored, gt) > 1e-2).all()


def test_root_aligned_mpjpe_ignores_per_frame_translation_only() -> None:
    gt = _points(k=len(KEYPOINT_NAMES))
    shift = np.random.default_rng(2).normal(size=(len(gt), 1, 3))
    np.testing.assert_allclose(metrics.mpjpe_root_aligned(gt + shift, gt), 0.0, atol=1e-12)
    bent = gt.copy()
    bent[:, 9] += [0.1, 0.0, 0.0]  # one wrist 10 cm off
    np.testing.assert_allclose(metrics.mpjpe_root_aligned(bent, gt), 0.1 / len(KEYPOINT_NAMES))


def test_accel_error_is_zero_for_offsets_and_linear_drift_and_masks_invalid_frames() -> None:
    gt = _points(t=8, k=len(KEYPOINT_NAMES))
    time = np.arange(8)[:, None, None]
    drift = 0.01 * time * np.random.default_rng(3).normal(size=(1, len(KEYPOINT_NAMES), 3))
    err = metrics.accel_error(gt + 0.3 + drift, gt)
    assert err.shape == (6,)
    np.testing.assert_allclose(err, 0.0, atol=1e-12)
    jolt = gt.copy()
    jolt[4, 9] += [0.0, 0.01, 0.0]
    err = metrics.accel_error(jolt, gt)
    # Frame 4's second difference moves by 2 cm, its neighbours' by 1 cm (one keypoint of K).
    np.testing.assert_allclose(err[[2, 3, 4]], np.array([0.01, 0.02, 0.01]) / len(KEYPOINT_NAMES))
    valid = np.ones(8, bool)
    valid[0] = False
    masked = metrics.accel_error(jolt, gt, valid)
    assert np.isnan(masked[0]) and np.isfinite(masked[1:]).all()


def test_projection_and_reprojection_error() -> None:
    k = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])
    xy = metrics.project_points(np.array([[[0.2, -0.1, 2.0]]]), k)
    np.testing.assert_allclose(xy, [[[60.0, 35.0]]])
    np.testing.assert_allclose(metrics.reprojection_error(xy + [3.0, 4.0], xy), [5.0])


def test_cases_cover_the_brief() -> None:
    (ci,) = CI_CASES
    assert 50 <= ci.frames <= 70 and 320 <= min(ci.width, ci.height) and max(ci.width, ci.height) <= 360
    assert 6 <= len(FULL_CASES) <= 9
    assert len({c.name for c in FULL_CASES}) == len(FULL_CASES)
    assert len({c.phenotypes for c in FULL_CASES}) == 3
    assert len({c.key("h") for c in FULL_CASES + CI_CASES}) == len(FULL_CASES) + 1
    for case in FULL_CASES + CI_CASES:
        assert 320 <= min(case.width, case.height) and max(case.width, case.height) <= 640
        assert case.width % 2 == 0 and case.height % 2 == 0  # H.264 4:2:0
        assert 0.8 <= case.cam_height <= 1.8 and 3.0 <= case.cam_distance <= 6.0
    renamed = dataclasses.replace(ci, name="other")
    assert renamed.key("h") == ci.key("h") != dataclasses.replace(ci, cam_height=1.5).key("h")
    assert ci.key("h") != ci.key("other data")


def _synthetic_truth(t: int = 12) -> RenderedCase:
    rng = np.random.default_rng(4)
    kp3d = rng.normal(scale=0.3, size=(t, len(KEYPOINT_NAMES), 3)) + [0.0, 0.0, 4.0]
    kp3d += 0.01 * np.arange(t)[:, None, None]
    k = CI_CASES[0].intrinsics
    return RenderedCase(Path("v.mp4"), Path("f.png"), kp3d, metrics.project_points(kp3d, k), np.ones(t, bool))


def _person(truth: RenderedCase, with_lifted: bool) -> PersonMotion:
    t = len(truth.in_view)
    index = np.array(MEDIAPIPE_INDEX)
    det3d, det2d = np.zeros((t, 33, 4)), np.zeros((t, 33, 3))
    det3d[:, index[EVAL_KEYPOINTS], :3] = metrics.root_relative(truth.keypoints3d)[:, EVAL_KEYPOINTS]
    det2d[:, index[EVAL_KEYPOINTS], :2] = truth.keypoints2d[:, EVAL_KEYPOINTS]
    arrays = {
        "frame_index": np.arange(t), "valid": np.ones(t, bool), "keypoints3d": truth.keypoints3d,
        "keypoints3d_detector": det3d, "keypoints2d": det2d,
    }  # fmt: skip
    if with_lifted:
        arrays["keypoints3d_lifted"] = metrics.root_relative(truth.keypoints3d) + 0.05
    return PersonMotion(0, arrays)


def test_evaluate_person_scores_exact_answers_zero_and_missing_arrays_none() -> None:
    truth = _synthetic_truth()
    person = _person(truth, with_lifted=True)
    person.arrays["valid"][3] = False
    errors, counts = evaluate_person(person, CI_CASES[0].intrinsics, truth)
    assert counts == {
        "frames": 12,
        "in_view_share": 1.0,
        "valid_share": round(11 / 12, 3),
        "evaluated_frames": 11,
    }
    for method in ("pipeline", "detector"):
        summary = errors[method].summary()
        assert summary["frames"] == 11
        for name in ("pa_mpjpe_mm", "mpjpe_mm", "accel_mm", "reprojection_px"):
            assert summary[name] == pytest.approx(0.0, abs=1e-3), (method, name)
    lifter = errors["lifter"].summary()
    assert lifter["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3) and lifter["reprojection_px"] is None
    assert len(errors["pipeline"].accel_mm) == 12 - 2 - 3  # frames 2, 3, 4 touch the invalid frame 3
    errors, _ = evaluate_person(_person(truth, with_lifted=False), CI_CASES[0].intrinsics, truth)
    assert errors["lifter"] is None
    overall = pooled([{"_errors": errors}, {"_errors": errors}])
    assert overall["lifter"] is None and overall["pipeline"]["frames"] == 24
    assert "| lifter | n/a |" in markdown_table(overall)


def test_cli_parses_and_missing_bpy_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.cli import add_parsers

    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["bench", "accuracy", "--subset", "full", "--cases", "2", "--lifter", "mediapipe"]
    )
    assert (args.command, args.bench, args.subset, args.cases, args.lifter) == (
        "bench",
        "accuracy",
        "full",
        2,
        "mediapipe",
    )
    monkeypatch.setitem(sys.modules, "bpy", None)
    with pytest.raises(BadInput, match="pip install bpy"):
        require_bpy()


def test_blender_camera_matches_our_projection(anny_body, tmp_path: Path) -> None:
    """Render 3 tiny frames: the body's pixels are where our pinhole model projects its vertices."""
    pytest.importorskip("bpy")
    from backend.train.data import DataConfig, load_clipset
    from bench.cases import pose_case

    try:
        clips = load_clipset("test", DataConfig())
    except FileNotFoundError:
        pytest.skip("no held-out mocap clips (../shared/mocap) and no cached clip set")
    case = BenchCase("tiny", "07_05", 40, 3, AVERAGE, 1.2, 3.0, 60.0, 144, 192, hfov_deg=50.0)  # portrait
    posed = pose_case(case, clips, anny_body)
    faces = anny_body.faces.cpu().numpy()
    regions = face_regions(anny_body.skin_weights.cpu().numpy(), faces, list(anny_body.bone_labels))
    assert set(np.unique(regions)) == {0, 1, 2, 3}
    import cv2

    with_body = render_frames(posed, case, faces, regions, tmp_path / "a", [0, 2])
    away = dataclasses.replace(posed, vertices=posed.vertices - np.float32([0.0, 0.0, 1000.0]))
    without = render_frames(away, case, faces, regions, tmp_path / "b", [0, 2])
    for t, a, b in zip([0, 2], with_body, without, strict=True):
        img, bg = cv2.imread(str(a)).astype(int), cv2.imread(str(b)).astype(int)
        mask = np.abs(img - bg).max(-1) > 25
        ys, xs = np.nonzero(mask)
        assert mask.mean() > 0.02, "the body is not in the image"
        verts2d = metrics.project_points(posed.vertices[t], case.intrinsics)
        box_render = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        box_ours = np.concatenate([verts2d.min(0), verts2d.max(0)])
        np.testing.assert_allclose(box_render, box_ours, atol=2.5)
        kp = np.round(posed.keypoints2d[t]).astype(int)
        near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert near[kp[:, 1], kp[:, 0]].mean() >= 0.9


def test_ci_subset_end_to_end(tmp_path: Path) -> None:
    """The CI subset of the accuracy bench: render a held-out walk on Anny, run the whole default
    pipeline on it, and check it beats MediaPipe's own 3D against the exact ground truth."""
    pytest.importorskip("bpy")
    from bench.accuracy import run_accuracy

    out = tmp_path / "report.json"
    report = run_accuracy(BenchConfig(subset="ci", device="cpu", cache_dir=tmp_path / "renders"), out)
    assert out.is_file()
    (case,) = report["cases"]
    assert case["valid_share"] >= 0.8 and case["evaluated_frames"] >= 40
    overall = report["overall"]
    pipeline, detector, lifter = overall["pipeline"], overall["detector"], overall["lifter"]
    assert pipeline["reprojection_px"] < 10.0
    assert lifter["pa_mpjpe_mm"] < detector["pa_mpjpe_mm"]
    assert pipeline["pa_mpjpe_mm"] < detector["pa_mpjpe_mm"]
    assert pipeline["accel_mm"] < 0.5 * detector["accel_mm"]


def test_planted_feet_runs_and_spreads() -> None:
    """Runs are stretches of at least ``min_frames`` contact frames per foot point; a run's spread is the
    farthest its point gets from the run's mean spot."""
    contact = np.zeros((12, 4), bool)
    contact[2:8, 0] = True  # 6 frames: a run
    contact[9:11, 0] = True  # 2 frames: too short
    contact[5:12, 3] = True  # to the last frame
    assert contact_runs(contact, 5) == [(0, 2, 8), (3, 5, 12)]
    world = np.zeros((12, len(KEYPOINT_NAMES), 3))
    world[7, FOOT_POINTS[0], 0] = 0.006  # one frame 6 mm off: the mean moves 1 mm, the spread is 5 mm
    assert spreads_mm(world, [(0, 2, 8)]) == pytest.approx([5.0])
