"""Who is in the clip: every tracked person for the motion file (when seen, how big, a thumbnail), and
where a chosen subject was lost and found again.

The list goes into the motion file's meta (``tracked``) and its thumbnails into the ``thumbnails``
array, one per listed person in the same order, so that a user (or the add-on) can see who is who and
pick ids for ``--person``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from backend.detect.multi import THUMB_SIZE, FramePeople
from backend.detect.track import Track, keypoint_bbox

LOST_MIN_FRAMES = 8
"""A gap of at least this many frames inside a subject's track is reported as lost and found again."""


@dataclass(frozen=True)
class TrackedPerson:
    """One tracked person as the motion file lists them."""

    id: int
    frames: str
    """Source frame ranges where the person was detected, e.g. ``"7-168, 198-226"``."""
    first: int
    last: int
    n_frames: int
    box_px: float
    """Median larger side of their box, in pixels (how big they are in the picture)."""
    chosen: bool
    """Whether this run fitted them (``--person``)."""

    def as_meta(self) -> dict[str, object]:
        return asdict(self)


def frame_ranges(frame_index: np.ndarray, mask: np.ndarray) -> str:
    """'a-b, c, ...': runs of source frame numbers where ``mask`` (T,) is True."""
    idx = np.asarray(frame_index)[np.asarray(mask, bool)]
    if len(idx) == 0:
        return ""
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts, ends = np.concatenate([[0], breaks + 1]), np.concatenate([breaks, [len(idx) - 1]])
    return ", ".join(f"{idx[a]}" if a == b else f"{idx[a]}-{idx[b]}" for a, b in zip(starts, ends, strict=True))


def _thumbnail(track: Track, people: Sequence[FramePeople]) -> np.ndarray:
    """The crop of ``track``'s person in the sampled frame where they are biggest and clearest."""
    best, score = np.zeros((THUMB_SIZE, THUMB_SIZE, 3), np.uint8), -1.0
    for t in np.flatnonzero(track.det >= 0):
        frame = people[t]
        if frame.thumbs is None:
            continue
        body = frame.body2d[track.det[t]]
        x0, y0, x1, y1 = keypoint_bbox(body)
        value = float((x1 - x0) * (y1 - y0) * body[:, 2].mean())
        if value > score:
            best, score = frame.thumbs[track.det[t]], value
    return best


def list_people(
    tracks: Sequence[Track], people: Sequence[FramePeople], frame_index: np.ndarray, chosen: Sequence[int]
) -> tuple[list[TrackedPerson], np.ndarray]:
    """Every track as a :class:`TrackedPerson`, and their thumbnails (N, THUMB_SIZE, THUMB_SIZE, 3) uint8."""
    listed, thumbs = [], []
    for track in tracks:
        seen = track.det >= 0
        boxes = [keypoint_bbox(people[t].body2d[track.det[t]]) for t in np.flatnonzero(seen)]
        sizes = [float((box[2:] - box[:2]).max()) for box in boxes]
        first, last = track.span()
        listed.append(TrackedPerson(
            track.track_id, frame_ranges(frame_index, seen), int(frame_index[first]), int(frame_index[last]),
            int(seen.sum()), round(float(np.median(sizes)), 1), track.track_id in chosen,
        ))  # fmt: skip
        thumbs.append(_thumbnail(track, people))
    return listed, np.stack(thumbs) if thumbs else np.zeros((0, THUMB_SIZE, THUMB_SIZE, 3), np.uint8)


def lost_and_found(track_id: int, valid: np.ndarray, frame_index: np.ndarray, relinked: bool) -> list[str]:
    """A warning per stretch of at least ``LOST_MIN_FRAMES`` frames inside the subject's span where he
    was not found (those frames are invalid: the fit bridges them, they are never filled with anyone
    else). ``valid`` (T,) after the backfill."""
    valid = np.asarray(valid, bool)
    seen = np.flatnonzero(valid)
    if len(seen) == 0:
        return []
    inside = np.zeros_like(valid)
    inside[seen[0] : seen[-1] + 1] = True
    gaps = inside & ~valid
    messages = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], gaps.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a >= LOST_MIN_FRAMES:
            how = " (re-identified by appearance)" if relinked else ""
            messages.append(
                f"Person {track_id} was lost at frame {int(frame_index[a])} and found again at frame "
                f"{int(frame_index[b])}{how}; frames {int(frame_index[a])}-{int(frame_index[b - 1])} are "
                "marked invalid and bridged by the fit: check them."
            )
    return messages
