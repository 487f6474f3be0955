"""Person tracking over a clip: pure numpy/scipy functions on per-frame detections.

Input: for each processed frame t (position 0..T-1), an array ``(P_t, 33, 3)`` of body
landmarks (x, y in pixels, confidence). Output: tracks numbered by prominence (0 = the most
prominent person over the clip) and the subject(s) the user asked for. Tracks of one person
lost for a while are joined by appearance in :mod:`backend.detect.reid`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from backend.config import TrackConfig
from backend.errors import BadInput

log = logging.getLogger(__name__)

MIN_CONF = 0.3
"""Landmarks below this confidence do not count for boxes and distances."""
_GATED = 1.0e6
_UNMATCHED = 0.5
_DUPLICATE_IOU = 0.5
_DUPLICATE_DIST = 0.35


@dataclass(frozen=True)
class Track:
    """One person over the clip."""

    track_id: int
    det: np.ndarray
    """(T,) int64: index of this person's detection in each frame, -1 where absent."""
    prominence: float
    """Sum over frames of box area (px^2) times mean landmark confidence."""
    pieces: tuple[tuple[int, int], ...] = ()
    """Spans of the tracks joined into this one by :func:`backend.detect.reid.relink`, in time
    order (empty if none)."""
    left_out: np.ndarray | None = None
    """(T,) bool: frames whose detection was left out because it looked like someone else
    (:mod:`backend.detect.identity`); never filled by the backfill. None: none."""

    @property
    def n_frames(self) -> int:
        return int((self.det >= 0).sum())

    def span(self) -> tuple[int, int]:
        """First and last frame positions (0-based, inclusive) where the person is seen."""
        seen = np.flatnonzero(self.det >= 0)
        return int(seen[0]), int(seen[-1])

    def segments(self) -> tuple[tuple[int, int], ...]:
        """Spans of the pieces joined by :func:`backend.detect.reid.relink`, or ``(span(),)``."""
        return self.pieces or (self.span(),)


def keypoint_bbox(kp: np.ndarray, min_conf: float = MIN_CONF, pad: float = 0.1) -> np.ndarray:
    """Boxes around landmarks with confidence > ``min_conf`` (all landmarks if < 2 qualify).

    Args:
        kp: (..., K, 3) x, y, confidence.
        pad: margin added on each side, as a fraction of the box's larger side.
    Returns:
        (..., 4) float32 x0, y0, x1, y1.
    """
    kp = np.asarray(kp, np.float32)
    good = kp[..., 2] > min_conf
    few = good.sum(-1, keepdims=True) < 2
    good = np.where(few, True, good)
    xy = kp[..., :2]
    lo = np.where(good[..., None], xy, np.inf).min(-2)
    hi = np.where(good[..., None], xy, -np.inf).max(-2)
    margin = pad * (hi - lo).max(-1, keepdims=True)
    return np.concatenate([lo - margin, hi + margin], -1).astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` (N, 4) and ``b`` (M, 4) -> (N, M)."""
    a = np.asarray(a, np.float64)[:, None, :]
    b = np.asarray(b, np.float64)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def keypoint_distance(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Mean landmark distance between people, divided by each ``a`` person's scale.

    Args:
        a: (N, K, 3) landmarks; b: (M, K, 3); scale: (N,) pixels (e.g. box size).
    Returns:
        (N, M): mean over landmarks confident in both of the pixel distance / scale; where
        no landmark is confident in both, the distance of the landmark centroids / scale.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    both = (a[:, None, :, 2] > MIN_CONF) & (b[None, :, :, 2] > MIN_CONF)
    dist = np.linalg.norm(a[:, None, :, :2] - b[None, :, :, :2], axis=-1)
    n = both.sum(-1)
    mean = np.where(both, dist, 0.0).sum(-1) / np.maximum(n, 1)
    centroid = np.linalg.norm(a[:, None, :, :2].mean(2) - b[None, :, :, :2].mean(2), axis=-1)
    out = np.where(n > 0, mean, centroid)
    return out / np.maximum(np.asarray(scale, np.float64)[:, None], 1.0)


def _box_scale(box: np.ndarray) -> np.ndarray:
    """(..., 4) boxes -> (...,) larger side in pixels."""
    return np.maximum(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1])


def dedupe(body2d: np.ndarray) -> np.ndarray:
    """Indices of the detections to keep in one frame, dropping near-identical duplicates.

    Args:
        body2d: (P, K, 3). Returns (P',) int64 indices, most confident first.
    """
    if len(body2d) < 2:
        return np.arange(len(body2d), dtype=np.int64)
    order = np.argsort(-body2d[:, :, 2].mean(-1), kind="stable")
    boxes = keypoint_bbox(body2d)
    iou = iou_matrix(boxes, boxes)
    dist = keypoint_distance(body2d, body2d, _box_scale(boxes))
    keep: list[int] = []
    for i in order:
        if all(iou[i, j] < _DUPLICATE_IOU or dist[j, i] > _DUPLICATE_DIST for j in keep):
            keep.append(int(i))
    return np.asarray(keep, np.int64)


@dataclass
class _Live:
    """A track being built."""

    det: dict[int, int]
    last_t: int
    box: np.ndarray
    """(4,) box at the last observation."""
    kp: np.ndarray
    """(K, 3) landmarks at the last observation."""
    velocity: np.ndarray
    """(2,) box-centre motion in pixels per frame (smoothed)."""


def _costs(live: list[_Live], t: int, kp: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N_live, P) association costs, ``_GATED`` where a match is implausible."""
    costs = np.full((len(live), len(kp)), _GATED)
    for i, tr in enumerate(live):
        gap = t - tr.last_t
        # Constant-velocity prediction, extrapolated over a few frames at most.
        shift = tr.velocity * min(gap, 5)
        pred_box = tr.box + np.concatenate([shift, shift])
        pred_kp = tr.kp.copy()
        pred_kp[:, :2] += shift
        # Distances relative to the larger of the two people (a partial view shrinks a box).
        scale = np.maximum(_box_scale(tr.box), _box_scale(boxes))
        iou = iou_matrix(pred_box[None], boxes)[0]
        dist = keypoint_distance(pred_kp[None], kp, np.ones(1))[0] / np.maximum(scale, 1.0)
        ratio = _box_scale(boxes) / max(float(_box_scale(tr.box)), 1.0)
        gate = min(0.5 + 0.05 * (gap - 1), 1.5)
        ok = (dist <= gate) & (ratio > 0.5) & (ratio < 2.0)
        cost = 0.4 * (1.0 - iou) + 0.5 * dist / gate + 0.005 * (gap - 1)
        costs[i] = np.where(ok, cost, _GATED)
    return costs


def _assign(costs: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost matching of (N, P) ``costs`` where leaving a track or a detection
    unmatched costs ``_UNMATCHED`` each, so that a poor match is not forced."""
    n, p = costs.shape
    big = np.full((n + p, p + n), _GATED)
    big[:n, :p] = costs
    big[:n, p:][np.diag_indices(n)] = _UNMATCHED
    big[n:, :p][np.diag_indices(p)] = _UNMATCHED
    big[n:, p:] = 0.0
    rows, cols = linear_sum_assignment(big)
    pairs = zip(rows, cols, strict=True)
    return [(int(i), int(j)) for i, j in pairs if i < n and j < p and costs[i, j] < _GATED]


def associate(frames: Sequence[np.ndarray], config: TrackConfig) -> list[Track]:
    """Link per-frame detections into tracks, numbered by prominence (0 = most prominent).

    Hungarian matching per frame on a cost mixing box IoU and normalised landmark distance
    (after a constant-velocity prediction); a track survives up to
    ``config.max_gap_frames`` frames without a match; tracks seen in fewer than
    ``config.min_track_frames`` frames (or the whole clip, if shorter) are dropped.

    Args:
        frames: T arrays (P_t, K, 3), landmarks in pixels with confidence.
    """
    live: list[_Live] = []
    done: list[_Live] = []
    for t, people in enumerate(frames):
        people = np.asarray(people, np.float32)
        expired = [tr for tr in live if t - tr.last_t > config.max_gap_frames + 1]
        done.extend(expired)
        live = [tr for tr in live if t - tr.last_t <= config.max_gap_frames + 1]
        if people.size == 0:
            continue
        keep = dedupe(people)
        kp = people[keep]
        boxes = keypoint_bbox(kp)
        matched: set[int] = set()
        if live:
            costs = _costs(live, t, kp, boxes)
            for i, j in _assign(costs):
                tr = live[i]
                step = ((boxes[j, :2] + boxes[j, 2:]) - (tr.box[:2] + tr.box[2:])) / 2.0
                step /= t - tr.last_t
                tr.velocity = 0.5 * tr.velocity + 0.5 * step if len(tr.det) > 1 else step
                tr.det[t], tr.last_t, tr.box, tr.kp = int(keep[j]), t, boxes[j], kp[j]
                matched.add(int(j))
        for j in range(len(kp)):
            if j not in matched:
                live.append(_Live({t: int(keep[j])}, t, boxes[j], kp[j], np.zeros(2)))
    done.extend(live)

    min_frames = max(1, min(config.min_track_frames, len(frames)))
    scored: list[tuple[float, int, np.ndarray]] = []
    for tr in done:
        if len(tr.det) < min_frames:
            continue
        det = np.full(len(frames), -1, np.int64)
        for t, j in tr.det.items():
            det[t] = j
        scored.append((prominence(frames, det), min(tr.det), det))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [Track(k, det, score) for k, (score, _, det) in enumerate(scored)]


def prominence(frames: Sequence[np.ndarray], det: np.ndarray) -> float:
    """Sum over frames of box area (px^2) times mean landmark confidence for one track.

    Args:
        frames: T arrays (P_t, K, 3); det: (T,) detection index per frame or -1.
    """
    total = 0.0
    for t in np.flatnonzero(det >= 0):
        kp = np.asarray(frames[t][det[t]])
        box = keypoint_bbox(kp, pad=0.0)
        area = float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))
        total += area * float(kp[:, 2].mean())
    return total


def _describe(tracks: Sequence[Track], frame_index: Sequence[int] | None) -> str:
    parts = []
    for tr in tracks:
        spans = []
        for a, b in tr.segments():
            if frame_index is not None:
                a, b = int(frame_index[a]), int(frame_index[b])
            spans.append(f"{a}-{b}")
        parts.append(f"id {tr.track_id}: frames {' and '.join(spans)}")
    return "; ".join(parts)


def choose_subjects(
    tracks: Sequence[Track], person: str, frame_index: Sequence[int] | None = None
) -> tuple[list[Track], list[str]]:
    """Pick the subject(s): 'auto' (most prominent), 'all', a track id, or ids separated by commas.

    Args:
        tracks: from :func:`associate`, ordered by id (0 = most prominent).
        frame_index: (T,) source frame numbers, only to print frame ranges in messages.
    Returns:
        The chosen tracks and warnings for the user.
    Raises:
        BadInput: ``person`` is not 'auto', 'all' or an existing id, or there are no tracks.
    """
    if not tracks:
        raise BadInput("No person was tracked in this clip: use a clip where a person is fully visible.")
    person = str(person).strip().lower()
    ids = [tr.track_id for tr in tracks]
    if person == "all":
        return list(tracks), []
    if person == "auto":
        if len(tracks) == 1:
            return [tracks[0]], []
        others = "1" if len(tracks) == 2 else f"1 to {len(tracks) - 1}"
        message = (
            f"{len(tracks)} people found; tracked the most prominent (id {tracks[0].track_id}). "
            f"Use --person {others} to choose another ({_describe(tracks, frame_index)})."
        )
        return [tracks[0]], [message]
    valid = ", ".join(str(i) for i in ids)
    wanted = [part.strip() for part in person.split(",")]
    bad = [w for w in wanted if not w.isdigit() or int(w) not in ids]
    if bad or len(set(wanted)) != len(wanted):
        raise BadInput(
            f"--person {person!r} is not a tracked person or a list of them: valid ids are {valid} "
            f"({_describe(tracks, frame_index)}); give one id, several separated by commas (e.g. 0,2), "
            "'auto' or 'all'."
        )
    return [tracks[ids.index(int(w))] for w in wanted], []
