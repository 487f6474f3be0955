"""Video decoding: streamed frames with real timestamps, rotation metadata and intrinsics guess.

Frames are never all held in memory: :func:`iter_frames` yields one frame at a time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from backend.errors import BadInput

log = logging.getLogger(__name__)

_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a clip before decoding it."""

    path: str
    width: int
    """Width of the displayed (rotation-corrected) frame, in pixels."""
    height: int
    fps: float
    """Nominal frame rate from the container (timestamps are authoritative)."""
    frame_count: int
    """Frame count from the container; may be approximate for variable frame rate clips."""
    rotation: int
    """Clockwise rotation in degrees applied to decoded frames (0, 90, 180 or 270)."""

    def intrinsics(self, focal_px: float | None, default_fov_deg: float) -> np.ndarray:
        """The 3x3 camera matrix: ``focal_px`` if given, else ``default_fov_deg`` across the long side."""
        if focal_px is None:
            focal_px = 0.5 * max(self.width, self.height) / math.tan(math.radians(default_fov_deg) / 2.0)
        return np.array(
            [[focal_px, 0.0, self.width / 2.0], [0.0, focal_px, self.height / 2.0], [0.0, 0.0, 1.0]]
        )


@dataclass(frozen=True)
class Frame:
    index: int
    """Frame number in the source clip (0-based)."""
    time_s: float
    """Presentation time in seconds."""
    rgb: np.ndarray
    """(H, W, 3) uint8, RGB, rotation applied."""


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise BadInput(f"Video {path} does not exist: check the path.")
    if not path.is_file():
        raise BadInput(f"{path} is not a file: give the path of a video file.")
    if path.stat().st_size == 0:
        raise BadInput(f"Video {path} is empty (0 bytes): re-export or re-copy the clip.")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise BadInput(
            f"Cannot read {path} as a video: convert it to H.264 MP4 (e.g. with ffmpeg or Blender) and try again."
        )
    # Rotation is applied here, explicitly, so that every OpenCV build behaves the same.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    return cap


def _rotation(cap: cv2.VideoCapture) -> int:
    meta = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META))) % 360
    return meta if meta in _ROTATE else 0


def probe(path: str | Path) -> VideoInfo:
    """Open a clip and read its first frame; raise BadInput with advice when it cannot be used."""
    path = Path(path)
    cap = _open(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            raise BadInput(f"{path} holds no decodable video frames: convert it to H.264 MP4 and try again.")
        rotation = _rotation(cap)
        if rotation:
            frame = cv2.rotate(frame, _ROTATE[rotation])
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            log.warning("%s reports no valid frame rate; assuming 30 fps", path)
            fps = 30.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        height, width = frame.shape[:2]
        return VideoInfo(str(path), width, height, fps, max(count, 1), rotation)
    finally:
        cap.release()


def iter_frames(info: VideoInfo, start: int = 0, end: int | None = None) -> Iterator[Frame]:
    """Yield frames ``start <= index < end`` one at a time, in RGB, rotation applied.

    Timestamps come from the container (variable frame rate safe); frames without one get
    the previous timestamp plus one nominal frame period.
    """
    cap = _open(Path(info.path))
    try:
        if start > 0:
            # Seeking is not frame-exact for every codec: decode and drop up to ``start``.
            for _ in range(start):
                if not cap.grab():
                    return
        index = start
        last_time = -1.0 / info.fps
        while end is None or index < end:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            msec = cap.get(cv2.CAP_PROP_POS_MSEC)
            time_s = msec / 1000.0 if math.isfinite(msec) and msec >= 0 else last_time + 1.0 / info.fps
            if index > start and time_s <= last_time:
                time_s = last_time + 1.0 / info.fps
            last_time = time_s
            if info.rotation:
                bgr = cv2.rotate(bgr, _ROTATE[info.rotation])
            yield Frame(index, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        cap.release()
