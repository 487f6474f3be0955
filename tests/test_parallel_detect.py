"""Detection on several threads: stretches, handover between graphs, joined camera rotations."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from backend.config import DetectConfig
from backend.detect.handover import Board, assemble, same_people
from backend.detect.multi import FramePeople
from backend.detect.parallel import run_tasks, spans
from backend.errors import BadInput, Cancelled

DEMO = Path(__file__).resolve().parents[1] / "demo" / "demo.mp4"


def _people(index: int, boxes: list[tuple[float, float, float, float]]) -> FramePeople:
    """A frame whose people are boxes (two keypoints at opposite corners)."""
    body = np.zeros((len(boxes), 33, 3), np.float32)
    for p, (x0, y0, x1, y1) in enumerate(boxes):
        body[p, :, :2] = (x0 + x1) / 2, (y0 + y1) / 2
        body[p, 0] = x0, y0, 1.0
        body[p, 1] = x1, y1, 1.0
        body[p, :, 2] = 1.0
    n = len(boxes)
    return FramePeople(index, index / 30, body, np.zeros_like(body), np.zeros((n, 1, 1), np.float32), np.zeros((n, 1)))


def _rz(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_spans_cover_the_range_once() -> None:
    assert spans(0, 230, 2) == [(0, 115), (115, 230)]
    assert spans(10, 100, 4) == [(10, 100)]  # 90 frames: too short for two stretches of 60
    assert spans(0, 200, 3, min_frames=60) == [(0, 66), (66, 133), (133, 200)]
    assert spans(5, 5, 2) == [(5, 5)]


def test_same_people_matches_boxes_one_to_one() -> None:
    a = _people(0, [(0, 0, 10, 20), (50, 0, 60, 20)])
    assert same_people(a, _people(0, [(51, 0, 61, 20), (0, 1, 10, 21)]))
    assert not same_people(a, _people(0, [(0, 0, 10, 20)]))
    assert not same_people(a, _people(0, [(0, 0, 10, 20), (1, 0, 11, 20)]))  # both on the first
    assert same_people(_people(0, []), _people(0, []))


def test_assemble_follows_the_handover_and_joins_the_camera() -> None:
    truth = [_rz(0.5 * t) for t in range(20)]  # frame t's camera to frame 0's
    board = Board([0, 8])
    first, second = board.stretches
    first.people = [_people(t, [(t, 0, t + 10, 20)]) for t in range(14)]
    first.rotations, first.handover = truth[:14], 14
    second.people = [_people(t, [(t, 0, t + 10, 20)]) for t in range(8, 20)]
    second.rotations = [truth[8].T @ r for r in truth[8:]]  # the second graph's own first frame is 8
    people, rotations, _ = assemble(board)
    assert [p.index for p in people] == list(range(20))
    assert people[13] is first.people[13] and people[14] is second.people[6]
    np.testing.assert_allclose(rotations, np.stack(truth), atol=1e-12)


def test_a_failing_task_stops_the_others_and_its_error_is_raised() -> None:
    started = threading.Event()

    def fails(tick, stopped):  # noqa: ANN001, ANN202
        started.wait(5)
        raise BadInput("the clip broke")

    def waits(tick, stopped):  # noqa: ANN001, ANN202
        started.set()
        while not stopped():
            tick()
        raise Cancelled()

    seen: list[int] = []
    with pytest.raises(BadInput, match="clip broke"):
        run_tasks([waits, fails], seen.append, lambda: False)
    assert seen


def test_two_threads_find_the_same_people_as_one(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("mediapipe")
    if not DEMO.is_file():
        pytest.skip("demo/demo.mp4 is missing")
    from backend.detect.run import detect_people
    from backend.io.video import probe

    info = probe(DEMO)
    caplog.set_level("INFO", logger="backend.detect.run")
    runs = {w: detect_people(info, 100, 220, DetectConfig(), lambda e: None, lambda: False, workers=w) for w in (1, 2)}
    one, two = runs[1].people, runs[2].people
    assert [p.index for p in one] == [p.index for p in two] == list(range(100, 220))
    assert all(same_people(a, b) for a, b in zip(one, two, strict=True))
    handed = [r.message for r in caplog.records if "2 thread(s)" in r.message]
    assert handed and "handovers at none" not in handed[0]  # the first graph handed over to the second
