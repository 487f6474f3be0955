"""The detect stage on the bundled demo clip and on generated clips (MediaPipe, CPU)."""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend import protocol
from backend.config import DetectConfig, TrackConfig
from backend.detect.holistic import crop_box, cut, silhouette_in_box
from backend.detect.types import DetectionResult
from backend.errors import BadInput, Cancelled
from backend.io.video import VideoInfo, probe

pytest.importorskip("mediapipe")

from backend.detect.run import detect_subjects, frame_ranges
from backend.detect.task_bundle import CACHE_ENV, ensure_pose_task

DEMO = Path(__file__).resolve().parents[1] / "demo" / "demo.mp4"
# The man on the box is found first, then the woman walking in from the right (frame 59).
START, END = 50, 80


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache folder, so that tests never touch the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def demo_info() -> VideoInfo:
    if not DEMO.is_file():
        pytest.skip("demo/demo.mp4 is missing")
    return probe(DEMO)


@pytest.fixture(scope="module")
def demo_result(demo_info: VideoInfo) -> tuple[DetectionResult, list[dict]]:
    events: list[dict] = []
    result = detect_subjects(
        demo_info, START, END, DetectConfig(), TrackConfig(person="all"), events.append, lambda: False
    )
    return result, events


def test_task_bundle_builds_once_and_loads(cache_dir: Path) -> None:
    from mediapipe.tasks.python import BaseOptions, vision

    path = ensure_pose_task()
    assert path.parent == cache_dir and path.suffix == ".task"
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
    mtime = path.stat().st_mtime_ns
    assert ensure_pose_task() == path and path.stat().st_mtime_ns == mtime
    assert not list(cache_dir.glob("*.part"))
    options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(path)), num_poses=2)
    with vision.PoseLandmarker.create_from_options(options) as landmarker:
        assert landmarker is not None


def test_demo_finds_two_people_and_fills_the_subject(
    demo_info: VideoInfo, demo_result: tuple[DetectionResult, list[dict]]
) -> None:
    result, events = demo_result
    n = END - START
    assert result.n_tracks == 2
    assert len(result.subjects) == 2
    man, woman = result.subjects
    # The man is found within a few frames and kept; the woman enters the frame at 59.
    assert man.valid.mean() >= 0.8 and man.valid[-20:].all()
    assert woman.valid.mean() >= 0.6 and woman.valid[-15:].all()
    # The most prominent (id 0) is the man on the box: his hips are far above hers.
    assert man.track_id == 0
    assert man.body2d[man.valid][:, 23:25, 1].mean() + 250 < woman.body2d[woman.valid][:, 23:25, 1].mean()
    assert any("Person 1 was not detected" in w for w in result.warnings)
    for subject in result.subjects:
        assert np.array_equal(subject.frame_index, np.arange(START, END))
        v = subject.valid
        body = subject.body2d[v]
        assert body.shape == (v.sum(), 33, 3) and body.dtype == np.float32
        good = body[..., 2] > 0.5
        assert good.mean() > 0.5
        assert np.all(body[good][:, 0] > -50) and np.all(body[good][:, 0] < demo_info.width + 50)
        assert np.all(body[good][:, 1] > -50) and np.all(body[good][:, 1] < demo_info.height + 50)
        assert np.all((body[..., 2] >= 0) & (body[..., 2] <= 1))
        # World landmarks are in metres around the hips.
        assert np.abs(subject.body_world[v]).max() < 2.0
        box = subject.bbox[v]
        assert np.all(box[:, 2] > box[:, 0]) and np.all(box[:, 3] > box[:, 1])
        assert subject.left_hand2d.shape == (n, 21, 3) and subject.face2d.shape == (n, 468, 3)
        assert subject.silhouette.shape == (n, 64, 64) and subject.silhouette.dtype == np.uint8
        assert (subject.silhouette[v].reshape(v.sum(), -1).max(1) > 128).mean() > 0.8
        assert np.all(subject.body2d[~v] == 0)
    hands = [
        (s.left_hand2d[:, 0, 2] > 0).sum() + (s.right_hand2d[:, 0, 2] > 0).sum() for s in result.subjects
    ]
    assert sum(hands) > 0
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(e["stage"] == "detect" for e in progress)
    assert progress[-1]["done"] == progress[-1]["total"] == 2 * n
    assert all(a["done"] <= b["done"] for a, b in itertools.pairwise(progress))
    assert all(protocol.decode(protocol.encode(e)) == e for e in progress)


def test_missing_wheel_models_are_bad_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from backend.detect import task_bundle

    monkeypatch.setattr(task_bundle, "_DETECTOR", ("pose_detection", "missing.tflite"))
    with pytest.raises(BadInput, match=r"mediapipe==0\.10\.21"):
        ensure_pose_task(tmp_path)


def test_without_holistic_hands_face_silhouette_are_zero(demo_info: VideoInfo) -> None:
    config = DetectConfig(holistic=False)
    result = detect_subjects(demo_info, 55, 65, config, TrackConfig(), protocol.null_reporter, lambda: False)
    (subject,) = result.subjects
    assert subject.valid.all()
    assert not subject.left_hand2d.any() and not subject.face2d.any() and not subject.silhouette.any()


def test_cancel_raises_cancelled(demo_info: VideoInfo) -> None:
    calls = {"n": 0}

    def is_cancelled() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        detect_subjects(demo_info, 0, 30, DetectConfig(), TrackConfig(), protocol.null_reporter, is_cancelled)
    assert calls["n"] == 4


def _write_video(path: Path, frames: int, size: tuple[int, int] = (320, 240)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 + 5 * i, np.uint8))
    writer.release()
    return path


def test_blank_video_is_bad_input(tmp_path: Path) -> None:
    info = probe(_write_video(tmp_path / "blank.mp4", 10))
    with pytest.raises(BadInput, match="No person was detected in blank.mp4"):
        detect_subjects(info, 0, None, DetectConfig(), TrackConfig(), protocol.null_reporter, lambda: False)


def test_empty_range_is_bad_input(tmp_path: Path) -> None:
    info = probe(_write_video(tmp_path / "short.mp4", 5))
    with pytest.raises(BadInput, match="No frames"):
        detect_subjects(info, 50, None, DetectConfig(), TrackConfig(), protocol.null_reporter, lambda: False)


def test_crop_and_silhouette_geometry() -> None:
    # A crop around a box stays square and inside a large frame.
    x0, y0, side = crop_box(np.array([100.0, 200.0, 200.0, 400.0]), 1000, 800)
    assert side == pytest.approx(250.0)
    assert (x0, y0) == pytest.approx((25.0, 175.0))
    # Near the edge it is shifted inside; a frame smaller than the square centres it.
    assert crop_box(np.array([0.0, 0.0, 50.0, 100.0]), 1000, 800)[:2] == pytest.approx((0.0, 0.0))
    assert crop_box(np.array([0.0, 0.0, 100.0, 700.0]), 1000, 800)[1] < 0
    # A cut of a known image puts the box's pixels where the crop says.
    image = np.zeros((800, 1000, 3), np.uint8)
    image[300:400, 120:180] = 255
    crop = (x0, y0, side)
    patch = cut(image, crop, 250)
    assert patch.shape == (250, 250, 3)
    assert patch[300 - 175 + 50, 150 - 25, 0] == 255 and patch[10, 10, 0] == 0
    # A mask over the crop, read back inside the box: the white rectangle lands in place.
    mask = patch[..., 0].astype(np.float32) / 255.0
    sil = silhouette_in_box(mask, crop, np.array([100.0, 200.0, 200.0, 400.0]), 20)
    assert sil.shape == (20, 20) and sil.dtype == np.uint8
    assert sil[15, 10] == 255 and sil[2, 10] == 0 and sil[15, 1] == 0


def test_frame_ranges() -> None:
    index = np.arange(10, 20)
    mask = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 1], bool)
    assert frame_ranges(index, mask) == "10-11, 14, 18-19"
    assert frame_ranges(index, np.zeros(10, bool)) == ""
