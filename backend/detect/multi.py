"""Multi-person 2D/3D body landmarks with MediaPipe's Tasks API ``PoseLandmarker``.

The legacy Pose and Holistic solutions follow one person; ``PoseLandmarker`` with
``num_poses=N`` finds several. It runs in VIDEO mode (tracking between frames) on the
bundle built by :mod:`backend.detect.task_bundle` from the wheel's own models. Each person
also gets a small appearance descriptor (clothing colour, body proportions) that
:func:`backend.detect.track.relink` uses to re-identify a person lost for a while.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import cv2
import numpy as np

from backend.config import DetectConfig
from backend.detect.task_bundle import ensure_pose_task
from backend.detect.track import MIN_CONF
from backend.detect.types import N_BODY
from backend.io.video import Frame

log = logging.getLogger(__name__)

HUE_BINS, SAT_BINS = 8, 4
COLOUR_BINS = HUE_BINS * SAT_BINS + 1
"""Colour histogram size: hue x saturation for coloured pixels, plus one bin for grey ones."""
N_REGIONS = 2
"""Body regions with a colour histogram: torso, thighs."""
N_RATIOS = 2
"""Body proportions: shoulder width and hip width over torso length (world landmarks)."""
_GREY_SAT = 25
"""Pixels below this saturation or value (0..255) count as grey (no reliable hue)."""
_MIN_PIXELS = 20
_MAX_SIDE = 96
"""Region pixels are subsampled so that the regions' box is at most about this large."""
_SHOULDERS, _HIPS, _KNEES = (11, 12), (23, 24), (25, 26)


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
    to 1, or all zero where the region was not visible), see :func:`colour_descriptor`."""
    ratios: np.ndarray
    """(P, N_RATIOS) float32: body proportions, NaN where unknown, see :func:`body_ratios`."""


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


def _band(a: np.ndarray, b: np.ndarray, half_width: float) -> np.ndarray:
    """(4, 2) rectangle of ``half_width`` pixels on each side of the segment a-b (2,)."""
    d = b - a
    n = np.array([-d[1], d[0]]) * (half_width / max(float(np.linalg.norm(d)), 1e-6))
    return np.stack([a + n, b + n, b - n, a - n])


def body_regions(kp: np.ndarray) -> list[list[np.ndarray]]:
    """Torso and thigh polygons of one person, shrunk inside the body to avoid background.

    Args:
        kp: (33, 3) landmarks in pixels with confidence.
    Returns:
        ``N_REGIONS`` lists of (4, 2) polygons (torso: one band along the spine; thighs: one
        band per leg from hip to knee); a list is empty where its landmarks are not confident.
    """
    xy, conf = kp[:, :2].astype(np.float64), kp[:, 2]
    neck, pelvis = xy[list(_SHOULDERS)].mean(0), xy[list(_HIPS)].mean(0)
    spine = float(np.linalg.norm(neck - pelvis))
    torso: list[np.ndarray] = []
    thighs: list[np.ndarray] = []
    if spine < 4.0:
        return [torso, thighs]
    if conf[[*_SHOULDERS, *_HIPS]].min() > MIN_CONF:
        half = max(0.35 * float(np.linalg.norm(xy[11] - xy[12])), 0.15 * spine)
        torso.append(_band(neck + 0.1 * (pelvis - neck), pelvis - 0.05 * (pelvis - neck), half))
    for hip, knee in zip(_HIPS, _KNEES, strict=True):
        if min(conf[hip], conf[knee]) > MIN_CONF:
            leg = xy[knee] - xy[hip]
            thighs.append(_band(xy[hip] + 0.1 * leg, xy[hip] + 0.8 * leg, 0.12 * spine))
    return [torso, thighs]


def colour_histogram(hsv: np.ndarray) -> np.ndarray:
    """Normalised colour histogram of (N, 3) uint8 OpenCV HSV pixels -> (COLOUR_BINS,) float32.

    Coloured pixels vote for ``HUE_BINS`` x ``SAT_BINS`` bins (hue shared linearly between
    the two nearest bins, circularly); grey or dark pixels vote for the last bin. Brightness
    is left out: it changes most with the lighting (backlight, shade).
    """
    h = hsv[:, 0].astype(np.float64) * (HUE_BINS / 180.0) - 0.5
    s = hsv[:, 1].astype(np.int64)
    coloured = (s >= _GREY_SAT) & (hsv[:, 2] >= _GREY_SAT)
    sat = np.minimum((s - _GREY_SAT) * SAT_BINS // (256 - _GREY_SAT), SAT_BINS - 1)[coloured]
    low = np.floor(h[coloured])
    frac = h[coloured] - low
    low = low.astype(np.int64) % HUE_BINS
    n = HUE_BINS * SAT_BINS
    out = np.zeros(COLOUR_BINS, np.float64)
    out[:n] = np.bincount(low * SAT_BINS + sat, 1.0 - frac, n)
    out[:n] += np.bincount((low + 1) % HUE_BINS * SAT_BINS + sat, frac, n)
    out[n] = (~coloured).sum()
    return (out / max(out.sum(), 1e-9)).astype(np.float32)


def colour_descriptor(rgb: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """Colour histograms of one person's torso and thighs.

    Args:
        rgb: (H, W, 3) uint8 frame; kp: (33, 3) landmarks in pixels with confidence.
    Returns:
        (N_REGIONS, COLOUR_BINS) float32, a row of zeros where a region is not visible
        (landmarks not confident, outside the frame or fewer than 20 pixels).
    """
    out = np.zeros((N_REGIONS, COLOUR_BINS), np.float32)
    regions = body_regions(kp)
    polygons = [p for region in regions for p in region]
    if not polygons:
        return out
    height, width = rgb.shape[:2]
    pts = np.concatenate(polygons)
    x0, y0 = np.clip(np.floor(pts.min(0)), 0, [width, height]).astype(int)
    x1, y1 = np.clip(np.ceil(pts.max(0)), 0, [width, height]).astype(int)
    step = max(1, int(np.ceil(max(x1 - x0, y1 - y0) / _MAX_SIDE)))
    patch = np.ascontiguousarray(rgb[y0:y1:step, x0:x1:step])
    if min(patch.shape[:2]) < 2:
        return out
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV)
    for r, region in enumerate(regions):
        if not region:
            continue
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round((p - [x0, y0]) / step).astype(np.int32) for p in region], 1)
        pixels = hsv[mask > 0]
        if len(pixels) >= _MIN_PIXELS:
            out[r] = colour_histogram(pixels)
    return out


def body_ratios(world: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """Shoulder width and hip width over torso length, from one person's world landmarks.

    Args:
        world: (33, 3) metres; kp: (33, 3) pixel landmarks, only for their confidence.
    Returns:
        (N_RATIOS,) float32, NaN unless shoulders and hips are confident.
    """
    if kp[[*_SHOULDERS, *_HIPS], 2].min() <= MIN_CONF:
        return np.full(N_RATIOS, np.nan, np.float32)
    torso = 0.5 * (np.linalg.norm(world[11] - world[23]) + np.linalg.norm(world[12] - world[24]))
    widths = np.linalg.norm(world[11] - world[12]), np.linalg.norm(world[23] - world[24])
    return (np.array(widths) / max(float(torso), 1e-6)).astype(np.float32)


class MultiPoseDetector:
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
        return FramePeople(frame.index, frame.time_s, body2d, world, colour, ratios)

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
