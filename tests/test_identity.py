"""Issue 16: a track that turns into someone else is split there; short visits are left out."""

from __future__ import annotations

import numpy as np

from backend.detect.identity import ABSOLUTE_FLOOR, colour_similarity, split_by_appearance
from backend.detect.track import Track

T, BINS = 40, 33


def _look(bin_: int, spread: float = 0.0) -> np.ndarray:
    """(2, BINS) torso and thigh histograms: the torso mostly in ``bin_``, the thighs grey."""
    torso = np.full(BINS, spread / BINS)
    torso[bin_] += 1.0 - spread
    thighs = np.zeros(BINS)
    thighs[-1] = 1.0
    return np.stack([torso, thighs])


def _frames(looks_a: list[np.ndarray], looks_b: list[np.ndarray | None]):  # noqa: ANN202
    """Per frame: person A (detection 0) and, where given, person B (detection 1)."""
    colour, bodies = [], []
    for a, b in zip(looks_a, looks_b, strict=True):
        colour.append(np.stack([a] + ([b] if b is not None else [])).astype(np.float32))
        bodies.append(np.ones((len(colour[-1]), 33, 3), np.float32))
    return colour, bodies


def test_a_switch_is_split_visits_left_out_and_a_lone_dip_kept() -> None:
    red, blue = _look(3), _look(20)
    looks_a = [red] * T
    looks_a[10] = _look(7)  # a lone frame unlike anyone (a backflip, a shadow): kept
    looks_a[15:17] = [blue, blue]  # two frames of the other person: left out
    looks_a[20:26] = [blue] * 6  # the other person for 6 frames, then A again: a visit, left out
    looks_a[30:] = [blue] * 10  # from 30 on the track follows the other person: split
    looks_b = [blue] * 12 + [None] * 28
    colour, bodies = _frames(looks_a, looks_b)
    det_a = np.zeros(T, np.int64)
    det_b = np.where(np.arange(T) < 12, 1, -1)
    tracks = split_by_appearance([Track(0, det_a, 1.0), Track(1, det_b, 1.0)], bodies, colour)
    assert len(tracks) == 3
    head, tail, other = tracks
    assert np.flatnonzero(head.det >= 0).tolist() == [t for t in range(30) if t not in (15, 16, 20, 21, 22, 23, 24, 25)]
    assert np.flatnonzero(tail.det >= 0).tolist() == list(range(30, 40))
    assert np.array_equal(other.det, det_b)
    assert colour_similarity(_look(7), red) < ABSOLUTE_FLOOR  # the lone dip was below the floor


def test_one_person_with_a_slowly_changing_look_stays_one_track() -> None:
    looks = [_look(3, spread=0.5 * t / T) for t in range(T)]  # light changes over the clip
    colour, bodies = _frames(looks, [None] * T)
    (track,) = split_by_appearance([Track(0, np.zeros(T, np.int64), 1.0)], bodies, colour)
    assert (track.det == 0).all()
