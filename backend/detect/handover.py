"""The multi-person pass on several threads without losing MediaPipe's tracking at the cuts.

MediaPipe's ``PoseLandmarker`` runs its inference on one core, so the clip is cut into stretches, one
per thread. But a fresh graph must *detect* everyone, while a running one *tracks* them, and the
tracker keeps people the detector misses (the demo's man on the box and in his flip: a graph started
half-way through never found him for 80 frames). So each stretch's thread carries on past its cut,
comparing what it finds with what the next stretch's graph found in the same frames, and hands over
only once both see the same people for ``AGREE_FRAMES`` frames in a row. Where they never agree it
carries on to the end of the clip: the result is always what one graph running through would give,
and the cost is at most that of one thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from backend import protocol
from backend.config import DetectConfig
from backend.detect.camera_motion import CameraMotion
from backend.detect.multi import FramePeople, MultiPoseDetector
from backend.detect.parallel import Tick
from backend.detect.track import iou_matrix, keypoint_bbox
from backend.errors import Cancelled
from backend.io.video import VideoInfo, iter_frames

AGREE_FRAMES = 5
"""Frames in a row in which two graphs must find the same people before one hands over."""
MIN_IOU = 0.6
"""Two detections are the same person when their keypoint boxes overlap at least this much."""


def same_people(a: FramePeople, b: FramePeople) -> bool:
    """Whether two graphs found the same people in one frame: as many, each matched one to one by box."""
    if len(a.body2d) != len(b.body2d):
        return False
    if len(a.body2d) == 0:
        return True
    iou = iou_matrix(keypoint_bbox(a.body2d), keypoint_bbox(b.body2d))  # (P, P)
    left = list(range(len(b.body2d)))
    for row in iou:
        best = max(left, key=lambda j: row[j])
        if row[best] < MIN_IOU:
            return False
        left.remove(best)
    return True


@dataclass
class Stretch:
    """What one thread found, frame by frame from its start (shared with the thread before it)."""

    start: int
    people: list[FramePeople] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)
    """(3, 3) per frame: its camera to the stretch's first frame's (empty without camera motion)."""
    failed: int = 0
    handover: int | None = None
    """The first frame taken from the next stretch instead; None: this thread ran to the end."""
    finished: bool = False

    def at(self, index: int) -> FramePeople | None:
        position = index - self.start
        return self.people[position] if 0 <= position < len(self.people) else None


class Board:
    """The stretches of all threads, and a condition to wait on the next one's frames."""

    def __init__(self, starts: list[int]) -> None:
        self.stretches = [Stretch(s) for s in starts]
        self.changed = threading.Condition()

    def wait_for(self, k: int, index: int, stopped: protocol.CancelCheck) -> FramePeople | None:
        """Stretch ``k``'s frame ``index`` once it is there; None when that thread ended without it."""
        stretch = self.stretches[k]
        with self.changed:
            while stretch.at(index) is None and not stretch.finished:
                if stopped():
                    raise Cancelled()
                self.changed.wait(0.1)
            return stretch.at(index)


def run_stretch(
    board: Board, k: int, info: VideoInfo, end: int | None, detect: DetectConfig,
    intrinsics: np.ndarray | None, tick: Tick, stopped: protocol.CancelCheck,
) -> None:  # fmt: skip
    """Thread ``k``: detect from its start until it can hand over to thread ``k + 1`` (or ``end``)."""
    mine = board.stretches[k]
    following = board.stretches[k + 1] if k + 1 < len(board.stretches) else None
    motion = CameraMotion(intrinsics, info.width) if intrinsics is not None and detect.camera_motion else None
    agreed = 0
    try:
        with MultiPoseDetector(detect) as detector:
            for frame in iter_frames(info, mine.start, end):
                if stopped():
                    raise Cancelled()
                found = detector.detect(frame)
                if motion is not None:
                    motion.add(frame.rgb, [keypoint_bbox(person, pad=0.1) for person in found.body2d])
                with board.changed:
                    mine.people.append(found)
                    board.changed.notify_all()
                if following is None or frame.index < following.start:
                    tick()
                    continue
                theirs = board.wait_for(k + 1, frame.index, stopped)
                agreed = agreed + 1 if theirs is not None and same_people(found, theirs) else 0
                if agreed >= AGREE_FRAMES:
                    mine.handover = frame.index + 1
                    break
        if motion is not None:
            mine.rotations, mine.failed = list(motion.chain()), motion.failed
    finally:
        with board.changed:
            mine.finished = True
            board.changed.notify_all()


def assemble(board: Board) -> tuple[list[FramePeople], np.ndarray | None, int]:
    """The clip's frames from the stretches, following the handovers; with camera motion, (T, 3, 3)
    rotations to the first frame's camera and the frames without a background estimate."""
    people: list[FramePeople] = []
    rotations: list[np.ndarray] = []
    failed, k, begin = 0, 0, board.stretches[0].start
    while True:
        stretch = board.stretches[k]
        stop = stretch.handover if stretch.handover is not None else stretch.start + len(stretch.people)
        a, b = begin - stretch.start, stop - stretch.start
        people.extend(stretch.people[a:b])
        if stretch.rotations:
            # Into the first stretch's frame through the last frame both stretches followed.
            to_first = rotations[-1] @ stretch.rotations[a - 1].T if rotations else np.eye(3)
            rotations.extend(to_first @ r for r in stretch.rotations[a:b])
        failed += stretch.failed
        if stretch.handover is None:
            break
        k, begin = k + 1, stretch.handover
    return people, (np.stack(rotations) if rotations else None), failed
