"""Backfill: find the subject in frames the multi-person pass missed, next to frames it found.

``PoseLandmarker`` sees the whole frame at low resolution, so a small person can go unfound
for a while (before his first detection, in a fast move). A single-person MediaPipe graph
(Holistic, or Pose when Holistic is off) on a crop around his nearest known box sees him
large. From each known frame a run works outward, frame by frame, each accepted frame being
the anchor of the next: forward into a gap in stream order, backward before a known frame in
reverse order (:func:`plan_runs`). A result is kept only when :func:`reject_reason` finds it
plausible; the first implausible one ends the run. :mod:`backend.detect.subject_pass` drives
the runs over the streamed frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from backend.config import DetectConfig
from backend.detect.closing import Closing
from backend.detect.holistic import (
    CROP_SIZE,
    HolisticFrame,
    body_arrays,
    create_graph,
    crop_box,
    cut,
    holistic_frame,
)
from backend.detect.track import MIN_CONF, iou_matrix, keypoint_bbox

log = logging.getLogger(__name__)

WINDOW = 45
"""Frames at most between a backfilled frame and the known frame its run starts from."""
CROP_SCALE = 1.6
"""The crop's side is the anchor box's larger side times this (room for the motion)."""
POSE_CROP_SIZE = 256
"""Pose (no Holistic) sees every crop resampled to this many pixels square."""
MIN_TORSO_VISIBILITY = 0.5
"""Least mean visibility of the shoulders and hips."""
MAX_CENTRE_SHIFT = 0.75
"""Largest move of the box centre from the anchor's, in anchor box sizes."""
SIZE_RANGE = (0.6, 1.6)
"""Allowed box size (larger side) relative to the anchor box."""
TORSO_RANGE = (0.65, 1.6)
"""Allowed torso length (mid-shoulders to mid-hips, pixels) relative to the known frames' median:
a skeleton collapsed onto part of the body (seen in mid-air flips) fails it."""
MAX_OTHER_IOU = 0.5
"""A box overlapping another tracked person's box more than this is that person."""
REFERENCE_FRAMES = 9
"""Known frames (nearest the anchor, on its side) whose median torso length is the reference."""
MAX_BUFFER_BYTES = 512 * 2**20
"""Memory for the frames held for a backward run; bounds the backward window on large frames."""
TORSO = (11, 12, 23, 24)


def box_size(box: np.ndarray) -> float:
    """Larger side in pixels of a (4,) box x0, y0, x1, y1."""
    return float(max(box[2] - box[0], box[3] - box[1]))


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """(4,) box clipped to the frame, float32."""
    out = np.asarray(box, np.float32).copy()
    out[[0, 2]] = np.clip(out[[0, 2]], 0, width)
    out[[1, 3]] = np.clip(out[[1, 3]], 0, height)
    return out


def _centre(box: np.ndarray) -> np.ndarray:
    """(2,) centre of a (4,) box."""
    box = np.asarray(box, np.float64)
    return (box[:2] + box[2:]) / 2.0


def torso_length(kp: np.ndarray) -> float:
    """Pixel distance from mid-shoulders to mid-hips of (33, 3) landmarks."""
    xy = np.asarray(kp, np.float64)[:, :2]
    return float(np.linalg.norm(xy[[11, 12]].mean(0) - xy[[23, 24]].mean(0)))


def reject_reason(
    body2d: np.ndarray,
    bbox: np.ndarray,
    anchor: np.ndarray,
    ref_torso: float | None,
    others: np.ndarray,
) -> str | None:
    """Why a backfilled body is implausible, or None when it is plausible.

    Args:
        body2d: (33, 3) candidate landmarks in pixels with visibility.
        bbox: (4,) its box; anchor: (4,) the box of the frame the run comes from.
        ref_torso: reference torso length in pixels (None: not checked).
        others: (M, 4) boxes of the other tracked people in this frame (M may be 0).
    """
    vis = float(np.asarray(body2d)[list(TORSO), 2].mean())
    if not vis > MIN_TORSO_VISIBILITY:
        return f"torso visibility {vis:.2f}"
    size, anchor_size = box_size(bbox), max(box_size(anchor), 1.0)
    shift = float(np.linalg.norm(_centre(bbox) - _centre(anchor))) / anchor_size
    if shift > MAX_CENTRE_SHIFT:
        return f"moved {shift:.2f} box sizes"
    if not SIZE_RANGE[0] <= size / anchor_size <= SIZE_RANGE[1]:
        return f"box size x{size / anchor_size:.2f}"
    if ref_torso:
        ratio = torso_length(body2d) / ref_torso
        if not TORSO_RANGE[0] <= ratio <= TORSO_RANGE[1]:
            return f"torso length x{ratio:.2f}"
    if len(others):
        iou = float(iou_matrix(np.asarray(bbox)[None], others).max())
        if iou > MAX_OTHER_IOU:
            return f"on another person (IoU {iou:.2f})"
    return None


@dataclass(frozen=True)
class Run:
    """Frames to try, in order, outward from a known frame."""

    anchor: int
    """Position of the known frame the run starts from."""
    frames: tuple[int, ...]
    """Positions to try, nearest the anchor first."""

    @property
    def forward(self) -> bool:
        return self.frames[0] > self.anchor


def _stretches(mask: np.ndarray) -> Iterator[tuple[int, int]]:
    """First and last positions (inclusive) of each run of True in (T,) ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        yield int(a), int(b) - 1


def plan_runs(
    valid: np.ndarray, window: int = WINDOW, back_window: int | None = None, blocked: np.ndarray | None = None
) -> list[Run]:
    """A forward and a backward run into each stretch of missing frames next to a known one.

    Args:
        valid: (T,) bool, the frames where the subject is known.
        window: most frames a forward run goes; ``back_window`` the same for backward runs
            (default ``window``). A gap shorter than both is tried from both sides.
        blocked: (T,) bool, frames never to fill (left out because the detection there looked like
            someone else, ``backend.detect.identity``): a run stops before the first one.
    Returns:
        The runs, in no particular order; none when no frame is known.
    """
    valid = np.asarray(valid, bool)
    back = window if back_window is None else back_window
    stop = np.zeros(len(valid), bool) if blocked is None else np.asarray(blocked, bool)
    runs: list[Run] = []

    def add(anchor: int, frames: range) -> None:
        allowed = []
        for f in frames:
            if stop[f]:
                break
            allowed.append(f)
        if allowed:
            runs.append(Run(anchor, tuple(allowed)))

    for a, b in _stretches(~valid):
        if a > 0 and window > 0:
            add(a - 1, range(a, min(b, a - 1 + window) + 1))
        if b < len(valid) - 1 and back > 0:
            add(b + 1, range(b, max(a, b + 1 - back) - 1, -1))
    return runs


def back_window(width: int, height: int, window: int = WINDOW) -> int:
    """The backward window: ``window``, fewer where that many frames would pass ``MAX_BUFFER_BYTES``."""
    return max(1, min(window, MAX_BUFFER_BYTES // max(width * height * 3, 1)))


def reference_torso(body2d: np.ndarray, valid: np.ndarray, run: Run) -> float | None:
    """Median torso length (pixels) of the known frames nearest ``run``'s anchor, on its side.

    Args:
        body2d: (T, 33, 3); valid: (T,) the frames known before backfilling.
    Returns:
        The median over up to ``REFERENCE_FRAMES`` frames with a confident torso, or None.
    """
    known = np.flatnonzero(valid)
    side = known[known <= run.anchor][::-1] if run.forward else known[known >= run.anchor]
    lengths: list[float] = []
    for t in side:
        if body2d[t, list(TORSO), 2].min() > MIN_CONF:
            lengths.append(torso_length(body2d[t]))
            if len(lengths) == REFERENCE_FRAMES:
                break
    return float(np.median(lengths)) if lengths else None


@dataclass(frozen=True)
class Found:
    """The single-person graph's result on one crop, in full-frame pixels."""

    body2d: np.ndarray
    """(33, 3) float32 pixels + visibility."""
    world: np.ndarray
    """(33, 3) float32 world landmarks, metres."""
    bbox: np.ndarray
    """(4,) float32 box around ``body2d``, clipped to the frame."""
    extras: HolisticFrame | None
    """Hands, face and silhouette (Holistic only)."""


class CropFollower(Closing):
    """A single-person MediaPipe graph following the subject on crops around an anchor box.

    Call :meth:`restart` before each run (the graph tracks between the frames it is given).
    """

    def __init__(self, config: DetectConfig, complexity: int, holistic: bool) -> None:
        self._graph = create_graph(config, complexity, holistic)
        self._holistic = holistic
        self._size = CROP_SIZE if holistic else POSE_CROP_SIZE
        self._silhouette = config.silhouette_size

    def restart(self) -> None:
        """Forget the tracked person: the next frame runs the person detector."""
        self._graph.reset()

    def process(self, rgb: np.ndarray, anchor: np.ndarray) -> Found | None:
        """The person on the crop around ``anchor`` (4,) in ``rgb`` (H, W, 3), or None."""
        height, width = rgb.shape[:2]
        crop = crop_box(anchor, width, height, CROP_SCALE)
        result = self._graph.process(cut(rgb, crop, self._size))
        if result.pose_landmarks is None:
            return None
        body, world = body_arrays(result, crop)
        bbox = clip_box(keypoint_bbox(body), width, height)
        extras = holistic_frame(result, crop, body, bbox, self._silhouette) if self._holistic else None
        return Found(body, world, bbox, extras)

    def close(self) -> None:
        self._graph.close()
