"""Person tracking on synthetic detections (no MediaPipe needed)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.config import TrackConfig
from backend.detect.track import (
    associate,
    choose_subjects,
    dedupe,
    iou_matrix,
    keypoint_bbox,
    keypoint_distance,
)
from backend.errors import BadInput

# A standing person, 33 MediaPipe landmarks, x in [-0.25, 0.25], y in [0, 1] (height 1).
_TEMPLATE = np.array(
    [[0.0, 0.05]] + [[-0.03, 0.03]] * 3 + [[0.03, 0.03]] * 3 + [[-0.06, 0.05], [0.06, 0.05]]
    + [[-0.02, 0.08], [0.02, 0.08]] + [[-0.15, 0.2], [0.15, 0.2], [-0.2, 0.35], [0.2, 0.35]]
    + [[-0.22, 0.5], [0.22, 0.5]] * 4 + [[-0.1, 0.52], [0.1, 0.52], [-0.1, 0.75], [0.1, 0.75]]
    + [[-0.1, 0.97], [0.1, 0.97], [-0.12, 0.99], [0.12, 0.99], [-0.05, 1.0], [0.05, 1.0]]
)  # fmt: skip


def person(cx: float, top: float, height: float, conf: float = 0.9) -> np.ndarray:
    """(33, 3) landmarks of a person centred at x = cx, head at y = top."""
    kp = np.empty((33, 3), np.float32)
    kp[:, 0] = cx + _TEMPLATE[:, 0] * height
    kp[:, 1] = top + _TEMPLATE[:, 1] * height
    kp[:, 2] = conf
    return kp


def frames_of(*people_per_frame: list[np.ndarray]) -> list[np.ndarray]:
    return [np.stack(p) if p else np.zeros((0, 33, 3), np.float32) for p in people_per_frame]


def crossing(n: int = 40, shuffle: bool = True) -> list[np.ndarray]:
    """Person A walks left to right, B (smaller, further away: feet higher) right to left."""
    rng = np.random.default_rng(0)
    frames = []
    for t in range(n):
        a = person(100 + 20 * t, 100, 400)
        b = person(900 - 20 * t, 50, 260)
        pair = [a, b] if not shuffle or rng.random() < 0.5 else [b, a]
        frames.append(np.stack(pair))
    return frames


def track_x(frames: list[np.ndarray], det: np.ndarray) -> np.ndarray:
    return np.array([frames[t][j][:, 0].mean() if j >= 0 else np.nan for t, j in enumerate(det)])


def test_geometry_helpers() -> None:
    kp = person(500, 100, 400)
    box = keypoint_bbox(kp, pad=0.0)
    assert np.allclose(box, [412, 112, 588, 500], atol=1e-3)
    kp[0, 2] = 0.1  # a low-confidence landmark does not count
    kp[0, :2] = (0, 0)
    assert np.allclose(keypoint_bbox(kp, pad=0.0), box, atol=1e-3)
    assert np.allclose(keypoint_bbox(np.stack([kp, kp]), pad=0.0).shape, (2, 4))
    iou = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert np.allclose(iou, [[1.0, 1 / 3, 0.0]])
    a = person(500, 100, 400)[None]
    b = person(540, 100, 400)[None]
    assert np.allclose(keypoint_distance(a, b, np.array([400.0])), 0.1)


def test_two_people_crossing_keep_their_identity() -> None:
    frames = crossing()
    tracks = associate(frames, TrackConfig())
    assert len(tracks) == 2
    for tr in tracks:
        assert tr.n_frames == len(frames)
    # The larger person (A) is the most prominent: id 0, moving right; B moves left.
    x0 = track_x(frames, tracks[0].det)
    x1 = track_x(frames, tracks[1].det)
    assert np.all(np.diff(x0) > 0)
    assert np.all(np.diff(x1) < 0)
    assert tracks[0].prominence > tracks[1].prominence


def test_gap_shorter_than_max_gap_keeps_one_track() -> None:
    seq = [[person(300 + 5 * t, 100, 400)] if not 10 <= t < 18 else [] for t in range(30)]
    tracks = associate(frames_of(*seq), TrackConfig(max_gap_frames=15))
    assert len(tracks) == 1
    assert tracks[0].n_frames == 22
    assert tracks[0].span() == (0, 29)
    assert np.all(tracks[0].det[10:18] == -1)


def test_gap_longer_than_max_gap_splits_the_track() -> None:
    seq = [[person(300, 100, 400)] if not 10 <= t < 30 else [] for t in range(40)]
    tracks = associate(frames_of(*seq), TrackConfig(max_gap_frames=15))
    assert len(tracks) == 2
    assert sorted(tr.span() for tr in tracks) == [(0, 9), (30, 39)]


def test_short_tracks_are_dropped_and_far_detections_not_matched() -> None:
    seq = []
    for t in range(30):
        people = [person(300, 100, 400)]
        if 5 <= t < 8:  # a spurious detection far away for three frames
            people.append(person(1500, 100, 400, conf=0.6))
        seq.append(people)
    tracks = associate(frames_of(*seq), TrackConfig(min_track_frames=5))
    assert len(tracks) == 1
    assert tracks[0].n_frames == 30
    assert np.allclose(track_x(frames_of(*seq), tracks[0].det), 300, atol=1)


def test_duplicate_detections_of_one_person_make_one_track() -> None:
    seq = []
    for t in range(20):
        a = person(300 + 3 * t, 100, 400)
        seq.append([a, a + np.array([4.0, 3.0, -0.1], np.float32)] if t % 3 == 0 else [a])
    frames = frames_of(*seq)
    assert list(dedupe(frames[0])) == [0]
    assert len(associate(frames, TrackConfig())) == 1


def test_choose_subjects() -> None:
    frames = crossing()
    tracks = associate(frames, TrackConfig())
    chosen, warnings = choose_subjects(tracks, "auto")
    assert [t.track_id for t in chosen] == [0]
    assert len(warnings) == 1
    assert "2 people found" in warnings[0] and "--person 1" in warnings[0]
    chosen, warnings = choose_subjects(tracks, "all")
    assert [t.track_id for t in chosen] == [0, 1] and warnings == []
    chosen, _ = choose_subjects(tracks, "1")
    assert [t.track_id for t in chosen] == [1]
    chosen, warnings = choose_subjects(tracks[:1], "auto")
    assert len(chosen) == 1 and warnings == []


@pytest.mark.parametrize("person_arg", ["2", "-1", "bob", ""])
def test_bad_person_id_is_bad_input(person_arg: str) -> None:
    tracks = associate(crossing(), TrackConfig())
    with pytest.raises(BadInput, match="valid ids are 0, 1"):
        choose_subjects(tracks, person_arg)


def test_no_tracks_is_bad_input() -> None:
    assert associate([np.zeros((0, 33, 3), np.float32)] * 5, TrackConfig()) == []
    with pytest.raises(BadInput):
        choose_subjects([], "auto")
