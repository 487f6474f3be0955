"""Person tracking on synthetic detections (no MediaPipe needed)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.config import TrackConfig
from backend.detect.backfill import Run, back_window, plan_runs, reference_torso, reject_reason, torso_length
from backend.detect.reid import appearance_similarity, relink, track_appearance
from backend.detect.track import (
    Track,
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
    chosen, _ = choose_subjects(tracks, "1,0")
    assert [t.track_id for t in chosen] == [1, 0]
    chosen, warnings = choose_subjects(tracks[:1], "auto")
    assert len(chosen) == 1 and warnings == []


@pytest.mark.parametrize("person_arg", ["2", "-1", "bob", "", "0,2", "0,0", "0,"])
def test_bad_person_id_is_bad_input(person_arg: str) -> None:
    tracks = associate(crossing(), TrackConfig())
    with pytest.raises(BadInput, match="valid ids are 0, 1"):
        choose_subjects(tracks, person_arg)


def test_no_tracks_is_bad_input() -> None:
    assert associate([np.zeros((0, 33, 3), np.float32)] * 5, TrackConfig()) == []
    with pytest.raises(BadInput):
        choose_subjects([], "auto")


# Appearance descriptors as the multi-person pass gives them: colour (2 regions x 33 bins), ratios (2,).
_BINS = 33
Look = tuple[np.ndarray, np.ndarray]


def look(torso_bin: int, thigh_bin: int, shoulder: float = 0.7, hip: float = 0.45) -> Look:
    """One-hot torso and thigh colour histograms and the given body proportions."""
    colour = np.zeros((2, _BINS), np.float32)
    colour[0, torso_bin] = 1.0
    colour[1, thigh_bin] = 1.0
    return colour, np.array([shoulder, hip], np.float32)


def scene(*people: tuple, n: int = 120) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Frames where each person (first frame, end frame, x, look[, height]) stands still.

    Returns per frame: body (P, 33, 3), colour (P, 2, 33), ratios (P, 2).
    """
    body, colour, ratios = [], [], []
    for t in range(n):
        here = [p for p in people if p[0] <= t < p[1]]
        kps = [person(p[2], 100, p[4] if len(p) > 4 else 400) for p in here]
        body.append(np.stack(kps) if here else np.zeros((0, 33, 3), np.float32))
        colour.append(np.stack([p[3][0] for p in here]) if here else np.zeros((0, 2, _BINS), np.float32))
        ratios.append(np.stack([p[3][1] for p in here]) if here else np.zeros((0, 2), np.float32))
    return body, colour, ratios


def spans(tracks: list[Track]) -> list[tuple[tuple[int, int], ...]]:
    return [tr.segments() for tr in tracks]


def test_appearance_of_a_track_and_similarity() -> None:
    body, colour, ratios = scene((0, 10, 300, look(3, 20)))
    colour[4] = np.zeros_like(colour[4])  # a frame where no region was visible does not dilute the mean
    ratios[5] = np.full_like(ratios[5], np.nan)
    (track,) = associate(body[:10], TrackConfig())
    mean, median = track_appearance(track.det, colour, ratios)
    assert np.allclose(mean, look(3, 20)[0]) and np.allclose(median, [0.7, 0.45])
    a = (mean, median)
    assert appearance_similarity(a, a) == pytest.approx(1.0)
    assert appearance_similarity(a, look(3, 21)) == 0.0  # every region must match
    assert appearance_similarity(a, look(3, 20, shoulder=0.62)) < 0.1  # other body proportions
    assert appearance_similarity(a, (np.zeros((2, _BINS)), median)) == 0.0  # nothing seen in common


def test_same_person_after_a_gap_is_relinked() -> None:
    # The subject (x = 300) is lost for 30 frames and comes back elsewhere; a bystander stays.
    body, colour, ratios = scene(
        (0, 40, 300, look(3, 20)), (70, 110, 900, look(3, 20)), (0, 120, 1500, look(12, 30), 300)
    )
    config = TrackConfig(max_gap_frames=15)
    tracks = associate(body, config)
    assert len(tracks) == 3 and tracks[0].span() == (0, 119)  # the bystander, seen throughout
    linked = relink(tracks, colour, ratios)
    assert spans(linked) == [((0, 39), (70, 109)), ((0, 119),)]
    assert tracks[0].prominence > tracks[1].prominence + tracks[2].prominence / 2
    assert [tr.track_id for tr in linked] == [0, 1]  # renumbered by prominence: the subject now first
    assert linked[0].n_frames == 80 and np.all(linked[0].det[40:70] == -1)
    assert linked[0].prominence == pytest.approx(tracks[1].prominence + tracks[2].prominence)
    _, warnings = choose_subjects(linked, "auto", np.arange(1000, 1120))
    assert "id 0: frames 1000-1039 and 1070-1109; id 1: frames 1000-1119" in warnings[0]
    # Past the largest gap, the two stay apart.
    assert len(relink(tracks, colour, ratios, max_gap=29)) == 3
    assert len(relink(tracks, colour, ratios, max_gap=30)) == 2


def test_different_appearance_is_not_relinked() -> None:
    for other in (look(5, 20), look(3, 20, shoulder=0.6, hip=0.4)):  # other shirt; other body
        body, colour, ratios = scene((0, 40, 300, look(3, 20)), (70, 110, 300, other))
        tracks = associate(body, TrackConfig(max_gap_frames=15))
        assert spans(relink(tracks, colour, ratios)) == spans(tracks) == [((0, 39),), ((70, 109),)]


def test_overlapping_tracks_are_never_relinked() -> None:
    # Two people dressed alike, at once: overlapping in time, they are two people.
    body, colour, ratios = scene((0, 60, 300, look(3, 20)), (40, 100, 1200, look(3, 20)))
    tracks = associate(body, TrackConfig())
    assert len(tracks) == 2
    assert spans(relink(tracks, colour, ratios, max_gap=1000)) == spans(tracks)


def test_relink_prefers_the_better_candidate_and_skips_ties() -> None:
    # A is lost; B (same look) and C (same colours, slightly other build) appear together.
    a, b, c = look(3, 20), look(3, 20), look(3, 20, shoulder=0.72)
    body, colour, ratios = scene((0, 40, 300, a), (60, 110, 300, b), (60, 110, 1200, c))
    tracks = associate(body, TrackConfig(max_gap_frames=15))
    linked = relink(tracks, colour, ratios)
    assert len(linked) == 2
    x = track_x(body, linked[0].det)
    assert spans(linked)[0] == ((0, 39), (60, 109)) and np.allclose(x[np.isfinite(x)], 300, atol=1)
    # When B and C look the same, nothing tells which one A is: no merge.
    body, colour, ratios = scene((0, 40, 300, a), (60, 110, 300, b), (60, 110, 1200, b))
    assert len(relink(associate(body, TrackConfig(max_gap_frames=15)), colour, ratios)) == 3


def test_relink_joins_a_chain_of_pieces() -> None:
    body, colour, ratios = scene(
        (0, 30, 300, look(3, 20)), (50, 80, 900, look(3, 20)), (100, 120, 300, look(3, 20))
    )
    tracks = associate(body, TrackConfig(max_gap_frames=15))
    assert len(tracks) == 3
    (linked,) = relink(tracks, colour, ratios)
    assert linked.track_id == 0 and linked.segments() == ((0, 29), (50, 79), (100, 119))
    assert linked.span() == (0, 119) and linked.n_frames == 80
    assert relink([], [], []) == []


def test_backfill_gate_on_synthetic_landmarks() -> None:
    anchor_kp = person(500, 100, 400)
    anchor = keypoint_bbox(anchor_kp)
    size = float(anchor[3] - anchor[1])
    ref = torso_length(anchor_kp)
    nobody = np.zeros((0, 4), np.float32)

    def reason(kp: np.ndarray, ref_torso: float | None = ref, others: np.ndarray = nobody) -> str | None:
        return reject_reason(kp, keypoint_bbox(kp), anchor, ref_torso, others)

    # The same person a little further on and a little smaller: plausible.
    near = person(530, 110, 380)
    assert reason(near) is None
    unseen = near.copy()
    unseen[[11, 12, 23, 24], 2] = 0.3
    assert "visibility" in str(reason(unseen))
    assert "moved" in str(reason(person(500 + 0.8 * size, 100, 400)))
    assert "box size" in str(reason(person(500, 200, 200)))
    assert "box size" in str(reason(person(500, -50, 700)))
    # A skeleton collapsed onto the hips (shoulders pulled down, box unchanged): not the body.
    collapsed = near.copy()
    collapsed[[11, 12], 1] = collapsed[[23, 24], 1] - 0.3 * ref
    assert "torso length" in str(reason(collapsed))
    assert reason(collapsed, ref_torso=None) is None
    # Where another tracked person stands: that person.
    assert "another person" in str(reason(near, others=keypoint_bbox(near)[None] + 5.0))
    assert reason(near, others=keypoint_bbox(person(1500, 100, 400))[None]) is None


def test_backfill_runs_go_outward_from_known_frames() -> None:
    valid = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0], bool)
    runs = plan_runs(valid, window=2)
    assert set(runs) == {Run(2, (1, 0)), Run(3, (4, 5)), Run(7, (6, 5)), Run(7, (8,))}
    assert [r.forward for r in sorted(runs, key=lambda r: r.frames)] == [False, True, False, True]
    assert set(plan_runs(valid, window=2, back_window=1)) == {
        Run(2, (1,)),
        Run(3, (4, 5)),
        Run(7, (6,)),
        Run(7, (8,)),
    }
    assert plan_runs(np.zeros(5, bool)) == [] and plan_runs(np.ones(5, bool)) == []
    # The reference torso: the median over the known frames on the anchor's side.
    body = np.stack([person(500, 100, h) for h in (100, 100, 200, 400, 100, 100, 100, 300, 100)])
    assert reference_torso(body, valid, Run(3, (4, 5))) == pytest.approx(
        (torso_length(body[2]) + torso_length(body[3])) / 2
    )
    assert reference_torso(body, valid, Run(7, (6, 5))) == pytest.approx(torso_length(body[7]))
    assert reference_torso(body, np.zeros(9, bool), Run(7, (6, 5))) is None
    # Frames held for backward runs stay within memory on large frames.
    assert back_window(1920, 1080) == 45 and 1 <= back_window(7680, 4320) < 45


def test_another_person_missed_for_a_moment_still_has_a_box() -> None:
    """Two people close together: the multi-person pass finds one of them per frame, in turns. Where the
    other goes unfound for up to ``OTHER_GAP_S`` their box is interpolated, so that the subject pass does not
    take them for the subject (the second real capture's cam04, where the man's crop held the woman);
    longer gaps stay empty."""
    from backend.detect.multi import FramePeople
    from backend.detect.run import OTHER_GAP_S, _other_boxes
    from backend.detect.track import Track

    fps, n = 30.0, 61
    her = [person(800 + 2 * t, 100, 300) for t in range(n)]  # walking steadily: interpolation is exact
    found = np.zeros(n, bool)
    long_gap = (11, 12 + int(OTHER_GAP_S * fps) + 8)  # unfound for longer than OTHER_GAP_S between these
    found[[0, *long_gap, n - 1]] = True
    people = [
        FramePeople(t, t / fps, np.stack([person(400, 80, 420)] + ([her[t]] if found[t] else [])),
                    np.zeros((1 + found[t], 33, 3), np.float32), np.zeros((1 + found[t], 2, 8), np.float32),
                    np.zeros((1 + found[t], 3), np.float32))
        for t in range(n)
    ]  # fmt: skip
    subject = Track(0, np.zeros(n, np.int64), 1.0)
    other = Track(1, np.where(found, 1, -1).astype(np.int64), 1.0)
    boxes = _other_boxes([subject, other], subject, people)[:, 0]
    assert boxes.shape == (n, 4)
    truth = np.stack([keypoint_bbox(kp, pad=0.1) for kp in her])
    assert np.allclose(boxes[: long_gap[0] + 1], truth[: long_gap[0] + 1], atol=1e-3)  # seen or interpolated
    assert np.allclose(boxes[long_gap[1] :], truth[long_gap[1] :], atol=1e-3)
    assert np.isnan(boxes[long_gap[0] + 1 : long_gap[1]]).all()  # too long unfound: unknown
