"""Issue 16: every tracked person listed with a thumbnail, and where a subject was lost and found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.detect.multi import THUMB_EVERY, THUMB_SIZE, FramePeople, thumbnails
from backend.detect.people_list import frame_ranges, list_people, lost_and_found
from backend.detect.track import Track
from backend.errors import BadInput
from backend.io import motion
from backend.io.motion_validate import read_thumbnails
from tests.motion_fixture import tiny_meta, tiny_person


def _frame(index: int, people: list[tuple[float, float, float]], rgb: np.ndarray) -> FramePeople:
    """A frame with people standing at (x, y_top, height) in pixels, thumbnails on sampled frames."""
    body = np.zeros((len(people), 33, 3), np.float32)
    for p, (x, top, height) in enumerate(people):
        body[p, :, 0] = x + np.linspace(-0.15, 0.15, 33) * height
        body[p, :, 1] = top + np.linspace(0, 1, 33) * height
        body[p, :, 2] = 0.9
    n = len(people)
    thumbs = thumbnails(rgb, body) if index % THUMB_EVERY == 0 else None
    return FramePeople(index, index / 30, body, np.zeros_like(body), np.zeros((n, 1, 1), np.float32),
                       np.zeros((n, 1), np.float32), thumbs)  # fmt: skip


def test_list_people_reports_frames_size_and_a_thumbnail_of_each() -> None:
    rgb = np.zeros((200, 320, 3), np.uint8)
    rgb[:, :160] = (255, 0, 0)  # the person on the left stands on red, the other on blue
    rgb[:, 160:] = (0, 0, 255)
    frames = [_frame(t, [(80, 20, 150), (240, 40, 100)], rgb) for t in range(40)]
    det_a = np.zeros(40, np.int64)
    det_b = np.where(np.arange(40) < 25, 1, -1)
    tracks = [Track(0, det_a, 1.0), Track(1, det_b, 0.5)]
    listed, thumbs = list_people(tracks, frames, np.arange(100, 140), chosen=[1])
    assert [p.id for p in listed] == [0, 1] and [p.chosen for p in listed] == [False, True]
    assert listed[0].frames == "100-139" and listed[1].frames == "100-124" and listed[1].n_frames == 25
    assert (listed[1].first, listed[1].last) == (100, 124)
    assert listed[0].box_px == pytest.approx(150 * 1.2, abs=2) and listed[1].box_px == pytest.approx(120, abs=2)
    assert thumbs.shape == (2, THUMB_SIZE, THUMB_SIZE, 3) and thumbs.dtype == np.uint8
    centre = thumbs[:, THUMB_SIZE // 2, THUMB_SIZE // 2]
    assert centre[0, 0] == 255 and centre[1, 2] == 255  # each crop shows its own person's side


def test_lost_and_found_names_the_gap() -> None:
    valid = np.ones(60, bool)
    valid[:5] = False  # before the first sighting: not "lost"
    valid[20:32] = False  # 12 frames: lost and found again
    valid[40:43] = False  # 3 frames: too short to report
    messages = lost_and_found(3, valid, np.arange(200, 260), relinked=True)
    assert len(messages) == 1
    assert "Person 3 was lost at frame 220 and found again at frame 232" in messages[0]
    assert "220-231" in messages[0] and "re-identified by appearance" in messages[0]
    assert lost_and_found(0, np.zeros(10, bool), np.arange(10), relinked=False) == []
    assert frame_ranges(np.arange(10, 20), valid[:10]) == "15-19"


def test_thumbnails_round_trip_in_the_motion_file(tmp_path: Path) -> None:
    meta = tiny_meta(5)
    meta["tracked"] = [{"id": 0, "frames": "0-4"}, {"id": 1, "frames": "2-4"}]
    thumbs = np.random.default_rng(0).integers(0, 255, (2, THUMB_SIZE, THUMB_SIZE, 3), dtype=np.uint8)
    path = motion.save(tmp_path / "a.motion.npz", motion.MotionFile(meta, [motion.PersonMotion(0, tiny_person(5))], thumbs))
    listed, read = read_thumbnails(path)
    assert [p["id"] for p in listed] == [0, 1] and np.array_equal(read, thumbs)
    assert motion.load(path).person(0)["body_pose"].shape == (5, 63)  # readers that do not ask ignore it
    with pytest.raises(BadInput, match="one crop per person"):
        motion.save(tmp_path / "b.motion.npz", motion.MotionFile(meta, [motion.PersonMotion(0, tiny_person(5))], thumbs[:1]))
    assert not (tmp_path / "b.motion.npz").exists()


def test_people_command_lists_the_demo_pair_without_fitting(tmp_path: Path) -> None:
    """``python -m backend people``: the man and the woman of the demo, each with their own thumbnail."""
    pytest.importorskip("mediapipe")
    import subprocess
    import sys

    demo = Path(__file__).resolve().parents[1] / "demo" / "demo.mp4"
    out = tmp_path / "demo.people.npz"
    cmd = [sys.executable, "-m", "backend", "people", str(demo), "--out", str(out), "--start", "50", "--end", "80"]
    done = subprocess.run(cmd + ["--events"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [line for line in done.stdout.splitlines() if '"result"' in line]
    assert len(events) == 1 and str(out) in events[0]
    listed, thumbs = read_thumbnails(out)
    assert [p["id"] for p in listed] == [0, 1] and thumbs.shape == (2, THUMB_SIZE, THUMB_SIZE, 3)
    man, woman = listed
    assert man["first"] < woman["first"] == 59  # the woman walks in at frame 59 (tests/test_detect.py)
    assert not np.array_equal(thumbs[0], thumbs[1]) and thumbs.std() > 10
    bad = subprocess.run(cmd[:-4] + ["--out", str(tmp_path / "x.motion.npz")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "must end with .people.npz" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.people.npz"]
