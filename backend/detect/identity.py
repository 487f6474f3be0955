"""Keep each track on one person: split a track where its detections start to look like someone else.

Where two people cross, the detector's own tracking can slide from the hidden person onto the one in
front, and linking by motion follows it: the track goes on with the other person (the rendered crossing
bench, ``bench/crowd.py``, found this in two of six clips). Every detection carries a clothing-colour
descriptor (:func:`backend.detect.reid.colour_descriptor`). Walking along a track, each detection is
compared with the track's recent look (the mean of its last ``MODEL_FRAMES`` accepted detections) and with
every other track's overall look. A detection is *someone else* when it is clearly closer to another
track (by ``MARGIN``), or far from its own look (below ``ABSOLUTE_FLOOR``) and not close to it again.
A run of such detections after which the track's own person comes back is a visit: those frames are
left out (invalid, bridged by the fit, never filled with the other person). A run longer than
``MAX_VISIT_FRAMES``, or one that lasts to the track's end, is a switch: the track is split there (the
rest becomes a new track, which :func:`backend.detect.reid.relink` may join to the right person).

Real footage dips too (lighting, a person turning, a backflip: same-person similarities down to about
0.55 on the demo), which is why a lone dip below the floor is not a switch unless another track explains
it better.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from backend.detect.track import Track, prominence

log = logging.getLogger(__name__)

MODEL_FRAMES = 15
"""A track's recent look: the mean descriptor of its last this many accepted detections."""
MARGIN = 0.1
"""A detection this much more similar to another track's look than to its own is someone else."""
ABSOLUTE_FLOOR = 0.4
"""Below this similarity to its own look, for ``PERSIST_FRAMES`` in a row, a detection is someone else
even when no other track explains it."""
PERSIST_FRAMES = 3
"""Detections of someone else in a row that make a visit (all left out) rather than a few doubtful ones."""
MAX_VISIT_FRAMES = 15
"""A run of someone else longer than this (half a second) is a switch: the track is split there."""


def colour_similarity(a: np.ndarray, b: np.ndarray) -> float | None:
    """Least Bhattacharyya coefficient over the regions seen in both (R, B) histograms; None if none."""
    both = (a.sum(-1) > 0) & (b.sum(-1) > 0)
    if not both.any():
        return None
    return float(np.sqrt(a[both] * b[both]).sum(-1).min())


def _mean_look(descriptors: list[np.ndarray], last: int | None = MODEL_FRAMES) -> np.ndarray:
    """(R, B) mean of the ``last`` descriptors (None: all) over the ones where each region was seen."""
    stack = np.stack(descriptors if last is None else descriptors[-last:]).astype(np.float64)
    seen = stack.sum(-1, keepdims=True) > 0
    return (stack * seen).sum(0) / np.maximum(seen.sum(0), 1)


def _look_of(det: np.ndarray, colour: Sequence[np.ndarray]) -> np.ndarray:
    """(R, B) a track's mean descriptor over all its detections."""
    return _mean_look([colour[t][det[t]] for t in np.flatnonzero(det >= 0)], None)


def _walk(
    det: np.ndarray, colour: Sequence[np.ndarray], others: list[np.ndarray]
) -> tuple[np.ndarray, int | None]:
    """One track's detections (T,) walked in time: the detection indices to keep and the position where
    the track turns into someone else for good (None: it stays one person).

    Detections of someone else (see the module doc) come in runs, during which the track's own look is
    frozen. A run that ends with the track's own person back is a visit: its frames are left out (set to
    -1; for runs shorter than ``PERSIST_FRAMES`` only those clearly closer to another track). A run longer
    than ``MAX_VISIT_FRAMES``, or of at least ``PERSIST_FRAMES`` at the end, is a switch."""
    kept = det.copy()
    accepted: list[np.ndarray] = []
    run: list[tuple[int, bool]] = []  # (position, closer to another track)

    def leave_out() -> None:
        long = len(run) >= PERSIST_FRAMES
        kept[[p for p, closer in run if closer or long]] = -1

    for t in np.flatnonzero(det >= 0):
        look = colour[t][det[t]]
        own = colour_similarity(_mean_look(accepted), look) if accepted else None
        if own is not None:
            sims = [s for s in (colour_similarity(o, look) for o in others) if s is not None]
            closer = any(s > own + MARGIN for s in sims)
            if closer or own < ABSOLUTE_FLOOR:
                run.append((int(t), closer))
                if len(run) > MAX_VISIT_FRAMES:
                    return kept, run[0][0]
                continue
        leave_out()
        run = []
        accepted.append(look)
    if len(run) >= PERSIST_FRAMES:
        return kept, run[0][0]
    leave_out()
    return kept, None


def split_by_appearance(
    tracks: Sequence[Track], frames: Sequence[np.ndarray], colour: Sequence[np.ndarray]
) -> list[Track]:
    """The tracks with every switch to another person split off and short visits dropped (see the
    module doc), in the order found (callers renumber by prominence, e.g. ``reid.relink``).

    Args:
        tracks: from :func:`backend.detect.track.associate`; frames: T arrays (P_t, K, 3) landmarks;
        colour: T arrays (P_t, R, B) descriptors.
    """
    looks = [_look_of(tr.det, colour) for tr in tracks]
    out: list[Track] = []
    for k, tr in enumerate(tracks):
        others = [look for j, look in enumerate(looks) if j != k]
        det = tr.det
        while True:
            kept, cut = _walk(det, colour, others)
            before = np.arange(len(det)) < (len(det) if cut is None else cut)
            head = np.where(before, kept, -1)
            left = (det >= 0) & (head < 0) & before
            if left.any():
                log.info("Track %d: %d detection(s) that look like someone else left out", tr.track_id, left.sum())
            if (head >= 0).any():
                out.append(Track(len(out), head, prominence(frames, head), left_out=left if left.any() else None))
            if cut is None:
                break
            log.info("Track %d turns into someone else at position %d: split there", tr.track_id, cut)
            others = others + [_look_of(head, colour)]
            det = np.where(np.arange(len(det)) >= cut, det, -1)
    return out
