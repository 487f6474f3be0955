"""``estimate`` with an SMPL-X body: command-line errors for missing or wrong model files, and an
end-to-end run (detection replaced by a synthetic track rendered through the tiny SMPL-X model of
``tests/tiny_smplx.py``; no real SMPL-X file is used) writing hands, jaw and expression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import smplx.vertex_ids

from backend import pipeline
from backend.body.smpl_files import ModelFileConfig
from backend.body.smplx_body import MEDIAPIPE_FACE_FOR_LANDMARKS, SmplxBody
from backend.cli import main
from backend.config import DecodeConfig, EstimateConfig, LiftConfig, preset_detect, preset_fit
from backend.detect.types import N_FACE, DetectionResult, SubjectTrack
from backend.fit.optimize import FitInputs
from backend.geometry.skeleton import MEDIAPIPE_INDEX
from backend.io import motion
from tests.conftest import write_clip
from tests.test_fit_smplx import K, synthetic_clip
from tests.tiny_smplx import VERTEX_IDS, write_tiny_smplx

T = 16


def _error_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["estimate", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cli_smplx_without_model_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_clip(tmp_path / "c.mp4")
    line = _error_line(capsys, str(clip), "--out", str(tmp_path / "o.motion.npz"), "--body", "smplx")
    assert "--model-path" in line and "https://smpl-x.is.tue.mpg.de" in line
    line = _error_line(
        capsys, str(clip), "--out", str(tmp_path / "o.motion.npz"), "--body", "smplh",
        "--model-path", str(tmp_path / "nowhere"),
    )  # fmt: skip
    assert "nowhere" in line and "https://mano.is.tue.mpg.de" in line


def test_cli_smplx_wrong_or_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_clip(tmp_path / "c.mp4")
    folder = tmp_path / "models"
    folder.mkdir()
    common = [str(clip), "--out", str(tmp_path / "o.motion.npz"), "--lifter", "mediapipe", "--body", "smplx"]
    line = _error_line(capsys, *common, "--model-path", str(folder), "--gender", "female")
    assert "SMPLX_FEMALE.npz" in line and str(folder) in line and "smpl-x.is.tue.mpg.de" in line
    bad = folder / "SMPLX_NEUTRAL.npz"
    np.savez(bad, v_template=np.zeros((3, 3)))
    line = _error_line(capsys, *common, "--model-path", str(folder))
    assert str(bad) in line and "missing" in line and "smpl-x.is.tue.mpg.de" in line
    tiny = write_tiny_smplx(tmp_path / "tiny")  # complete, but not the official mesh (882 vertices)
    line = _error_line(capsys, *common, "--model-path", str(tiny.parent))
    assert str(tiny) in line and "882 vertices" in line and "smpl-x.is.tue.mpg.de" in line
    assert not (tmp_path / "o.motion.npz").exists()


def _track(inputs: FitInputs) -> SubjectTrack:
    """The detector's view of the synthetic clip: MediaPipe's body, hand and face layouts."""
    t = inputs.kp2d.shape[0]
    index = np.array(MEDIAPIPE_INDEX)
    has = index >= 0
    body2d = np.zeros((t, 33, 3), np.float32)
    body2d[:, index[has], :2] = inputs.kp2d[:, has]
    body2d[:, index[has], 2] = 0.9
    world = np.zeros((t, 33, 3), np.float32)
    world[:, index[has]] = inputs.lifted[:, has]
    face = np.zeros((t, N_FACE, 3), np.float32)
    face[:, list(MEDIAPIPE_FACE_FOR_LANDMARKS)] = inputs.face2d
    xy = inputs.kp2d
    bbox = np.concatenate([xy.min(1), xy.max(1)], axis=1).astype(np.float32)
    return SubjectTrack(
        track_id=0, frame_index=np.arange(t), time_s=inputs.times, valid=np.ones(t, bool),
        body2d=body2d, body_world=world, left_hand2d=inputs.hand2d[:, 0].astype(np.float32),
        right_hand2d=inputs.hand2d[:, 1].astype(np.float32), face2d=face, bbox=bbox,
        silhouette=np.zeros((t, 64, 64), np.uint8),
    )  # fmt: skip


class _StillCamera:
    """What the pipeline reads of the (skipped) detect stage before tracking: a camera that stands still."""

    camera_rotations = None


def test_estimate_end_to_end_with_tiny_smplx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_tiny_smplx(tmp_path / "models").parent
    # smplx's own keypoint vertex ids index a real 10,475-vertex mesh: use the tiny model's.
    monkeypatch.setitem(smplx.vertex_ids.vertex_ids, "smplx", VERTEX_IDS)
    body = SmplxBody(folder, ModelFileConfig(model_type="smplx", vertex_ids=VERTEX_IDS))
    inputs, truth = synthetic_clip(body, t=T)
    track = _track(inputs)
    monkeypatch.setattr(pipeline, "detect_people", lambda *args, **kwargs: _StillCamera())
    monkeypatch.setattr(
        pipeline, "track_subjects", lambda *args, **kwargs: DetectionResult([track], 1, [], 30.0)
    )
    clip = write_clip(tmp_path / "clip.mp4", frames=T, size=(960, 720), fps=30.0)
    config = EstimateConfig(
        preset="fast", device="cpu", body="smplx", model_path=str(folder),
        decode=DecodeConfig(focal_px=float(K[0, 0])), detect=preset_detect("balanced"),
        lift=LiftConfig(method="mediapipe"), fit=preset_fit("fast"),
    )  # fmt: skip
    out = tmp_path / "clip.motion.npz"
    events: list[dict] = []
    preview = tmp_path / "clip_preview.mp4"
    summary = pipeline.estimate(clip, out, config, preview, events.append, lambda: False)
    assert summary.motion_path == out and events[-1] == {"event": "result", "path": str(out)}
    assert preview.is_file()
    loaded = motion.load(out)
    meta, person = loaded.meta, loaded.person()
    model = meta["body_model"]
    assert (model["name"], model["gender"], model["model_file"]) == ("smplx", "neutral", "SMPLX_NEUTRAL.npz")
    assert model["source_hash"] == body.source_hash() and len(model["bone_labels"]) == 55
    assert person["betas"].shape == (10,) and person["expression"].shape == (T, 10)
    assert person["left_hand_pose"].shape == (T, 45) and np.abs(person["left_hand_pose"]).max() > 0.1
    assert person["jaw_pose"].shape == (T, 3) and np.abs(person["jaw_pose"]).max() > 0.02
    assert person["keypoints3d_hands"].shape == (T, 2, 21, 3)
    assert person["keypoints3d_face"].shape == (T, 51, 3)
    assert person["rig_pose"].shape == (T, 55, 3) and "phenotypes" not in person.arrays
    assert "rig/shape_key_targets" in person.arrays and "anny_pose" not in person.arrays
    stages = list(meta["fit_stats"]["stages"])
    assert stages == ["global", "pose3d", "body", "hands", "face", "all", "contact"]
    assert meta["metrics"]["reprojection_median_px"] < 5.0
    assert meta["config"]["body"] == "smplx" and meta["config"]["model_path"] == str(folder)
    rel = person["keypoints3d"] - person["keypoints3d"][:, 11:13].mean(1, keepdims=True)
    ref = truth.keypoints - truth.keypoints[:, 11:13].mean(1, keepdims=True)
    assert 1000 * np.linalg.norm(rel - ref, axis=-1).mean() < 40.0


def test_addon_job_options_for_smplx(tmp_path: Path) -> None:
    from blender_addon.job_options import JobOptions

    clip = write_clip(tmp_path / "c.mp4")
    out = tmp_path / "c.motion.npz"
    (problem,) = JobOptions(clip, out, body="smplx").problems()
    assert "smpl-x.is.tue.mpg.de" in problem and "model path" in problem
    options = JobOptions(clip, out, body="smplx", model_path=tmp_path, gender="female")
    assert options.problems() == []
    argv = options.argv(Path("/py"))
    assert argv[argv.index("--body") + 1] == "smplx" and argv[argv.index("--model-path") + 1] == str(tmp_path)
    assert argv[argv.index("--gender") + 1] == "female"
