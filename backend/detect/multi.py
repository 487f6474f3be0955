"""Multi-person 2D/3D body landmarks with MediaPipe's Tasks API ``PoseLandmarker``.

The legacy Pose and Holistic solutions follow one person; ``PoseLandmarker`` with
``num_poses=N`` finds several. It runs in VIDEO mode (tracking between frames) on the
bundle built by :mod:`backend.detect.task_bundle` from the wheel's own models. Each person
also gets a small appearance descriptor (clothing colour, body proportions) that
:func:`backend.detect.reid.relink` uses to re-identify a person lost for a while.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import DetectConfig
from backend.detect.closing import Closing
from backend.detect.holistic import crop_box, cut
from backend.detect.reid import COLOUR_BINS, N_RATIOS, N_REGIONS, body_ratios, colour_descriptor
from backend.detect.task_bundle import ensure_pose_task
from backend.detect.track import keypoint_bbox
from backend.detect.types import N_BODY
from backend.io.video import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FramePeople:
    """Everyone the detector found in one frame (P people, possibly 0)."""

    index: int
    """Source frame number."""
    time_s: float
    body2d: np.ndarray
    """(P, 33, 3) float32: x, y in pixels, confidence (landmark visibility) in [0, 1]."""
    world: np.ndarray
    """(P, 33, 3) float32: world landmarks in metres, origin between the hips."""
    colour: np.ndarray
    """(P, N_REGIONS, COLOUR_BINS) float32: torso and thigh colour histograms (each sums
    to 1, or all zero where the region was not visible), see
    :func:`backend.detect.reid.colour_descriptor`."""
    ratios: np.ndarray
    """(P, N_RATIOS) float32: body proportions, NaN where unknown, see
    :func:`backend.detect.reid.body_ratios`."""
    thumbs: np.ndarray | None = None
    """(P, THUMB_SIZE, THUMB_SIZE, 3) uint8 RGB crops around each person, every ``THUMB_EVERY``-th
    frame (None on the others): the people list's thumbnails."""


THUMB_SIZE = 64
"""Side of a person's thumbnail crop (pixels)."""
THUMB_EVERY = 15
"""A thumbnail of everyone every this many source frames (memory stays small on long clips)."""


def thumbnails(rgb: np.ndarray, body2d: np.ndarray) -> np.ndarray:
    """(P, THUMB_SIZE, THUMB_SIZE, 3) uint8 square crops of ``rgb`` around each of ``body2d`` (P, 33, 3)."""
    height, width = rgb.shape[:2]
    crops = [cut(rgb, crop_box(keypoint_bbox(person), width, height, scale=1.1), THUMB_SIZE) for person in body2d]
    return np.stack(crops) if crops else np.zeros((0, THUMB_SIZE, THUMB_SIZE, 3), np.uint8)


def _landmarks_to_array(landmarks: Any, width: float, height: float) -> np.ndarray:
    """One person's normalised landmarks -> (33, 3) float32 pixels + confidence."""
    out = np.zeros((N_BODY, 3), np.float32)
    for k, lm in enumerate(landmarks[:N_BODY]):
        conf = lm.visibility if lm.visibility is not None else lm.presence
        out[k] = (lm.x * width, lm.y * height, 0.0 if conf is None else conf)
    out[:, 2] = np.clip(out[:, 2], 0.0, 1.0)
    return out


def _world_to_array(landmarks: Any) -> np.ndarray:
    """One person's world landmarks -> (33, 3) float32 metres."""
    out = np.zeros((N_BODY, 3), np.float32)
    for k, lm in enumerate(landmarks[:N_BODY]):
        out[k] = (lm.x, lm.y, lm.z)
    return out


class MultiPoseDetector(Closing):
    """PoseLandmarker in VIDEO mode; feed frames in order with :meth:`detect`.

    Use as a context manager (or call :meth:`close`) to free the MediaPipe graph.
    """

    def __init__(self, config: DetectConfig, task_path: Path | None = None) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        path = task_path if task_path is not None else ensure_pose_task()
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=max(1, int(config.max_people)),
            min_pose_detection_confidence=config.min_detection_confidence,
            min_pose_presence_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
            output_segmentation_masks=False,
        )
        self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._last_ms = -1

    def detect(self, frame: Frame) -> FramePeople:
        """Landmarks of everyone in ``frame`` (frames must come in increasing time order)."""
        import mediapipe as mp

        # MediaPipe needs strictly increasing integer millisecond timestamps.
        ms = max(round(frame.time_s * 1000.0), self._last_ms + 1)
        self._last_ms = ms
        rgb = np.ascontiguousarray(frame.rgb)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        result = self._landmarker.detect_for_video(image, ms)
        height, width = rgb.shape[:2]
        people = result.pose_landmarks or []
        worlds = result.pose_world_landmarks or []
        n = min(len(people), len(worlds))
        body2d = np.zeros((n, N_BODY, 3), np.float32)
        world = np.zeros((n, N_BODY, 3), np.float32)
        colour = np.zeros((n, N_REGIONS, COLOUR_BINS), np.float32)
        ratios = np.zeros((n, N_RATIOS), np.float32)
        for p in range(n):
            body2d[p] = _landmarks_to_array(people[p], width, height)
            world[p] = _world_to_array(worlds[p])
            colour[p] = colour_descriptor(rgb, body2d[p])
            ratios[p] = body_ratios(world[p], body2d[p])
        thumbs = thumbnails(rgb, body2d) if frame.index % THUMB_EVERY == 0 else None
        return FramePeople(frame.index, frame.time_s, body2d, world, colour, ratios, thumbs)

    def close(self) -> None:
        self._landmarker.close()
