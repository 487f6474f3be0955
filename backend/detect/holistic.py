"""Hands, face and silhouette of one tracked subject with MediaPipe Holistic on a crop.

Holistic follows a single person, so it runs on a crop around the tracked subject's box
(expanded, square-ish, clamped to the frame): a second person elsewhere cannot capture it.
Its landmarks are mapped back to full-frame pixels. Where the multi-person pass found the
subject, the body comes from it and Holistic's body only serves to check that it looks at the
same person; where it did not, :mod:`backend.detect.backfill` takes Holistic's (or Pose's) body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from backend.config import DetectConfig
from backend.detect.closing import Closing
from backend.detect.track import MIN_CONF, keypoint_distance
from backend.detect.types import N_BODY, N_FACE, N_HAND

log = logging.getLogger(__name__)

CROP_SCALE = 1.25
"""The crop's side is the subject's box's larger side times this."""
CROP_SIZE = 512
"""Holistic sees every crop resampled to this many pixels square (its segmentation
smoothing needs a constant image size)."""
MAX_BODY_DISAGREEMENT = 0.4
"""Mean landmark distance (fraction of box size) above which Holistic saw someone else."""
RESTART_AFTER = 3
"""Restart Holistic after this many consecutive frames on someone else."""
MAX_WRIST_DISTANCE = 0.2
"""A hand whose wrist is further than this (fraction of box size) from the tracked wrist is dropped."""
LEFT_WRIST, RIGHT_WRIST = 15, 16
_MODEL_FILES = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}


@dataclass(frozen=True)
class HolisticFrame:
    """Holistic's output for the subject in one frame, in full-frame pixels."""

    left_hand: np.ndarray
    """(21, 3) float32 x, y, confidence (1 where found, 0 where not)."""
    right_hand: np.ndarray
    """(21, 3) float32."""
    face: np.ndarray
    """(468, 3) float32."""
    silhouette: np.ndarray
    """(S, S) uint8 segmentation (0..255) resampled inside the subject's box."""


def empty_frame(size: int) -> HolisticFrame:
    """All zeros: nothing found."""
    return HolisticFrame(
        np.zeros((N_HAND, 3), np.float32),
        np.zeros((N_HAND, 3), np.float32),
        np.zeros((N_FACE, 3), np.float32),
        np.zeros((size, size), np.uint8),
    )


def crop_box(
    bbox: np.ndarray, width: int, height: int, scale: float = CROP_SCALE
) -> tuple[float, float, float]:
    """Square crop (x0, y0, side) in pixels around ``bbox`` (4,), kept inside the frame.

    The side is ``scale`` times the box's larger side, centred on the box and shifted to
    stay inside the frame; only where the frame is smaller than the square does the square
    reach past its edges (that part of the crop is black).
    """
    x0, y0, x1, y1 = (float(v) for v in bbox)
    side = max(x1 - x0, y1 - y0, 16.0) * scale

    def axis(center: float, limit: int) -> float:
        if side >= limit:
            return (limit - side) / 2.0
        return min(max(center - side / 2.0, 0.0), limit - side)

    return axis((x0 + x1) / 2.0, width), axis((y0 + y1) / 2.0, height), side


def cut(rgb: np.ndarray, crop: tuple[float, float, float], size: int) -> np.ndarray:
    """The square ``crop`` (x0, y0, side) of ``rgb`` (H, W, 3) resampled to (size, size, 3)."""
    x0, y0, side = crop
    s = side / size
    warp = np.array([[s, 0.0, x0 + 0.5 * s - 0.5], [0.0, s, y0 + 0.5 * s - 0.5]])
    flags = (cv2.INTER_AREA if s > 1.0 else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(rgb, warp, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT)


def _to_pixels(
    landmarks: Any, count: int, crop: tuple[float, float, float], conf: float | None
) -> np.ndarray:
    """Normalised crop landmarks -> (count, 3) float32 full-frame pixels + confidence.

    ``conf`` None takes each landmark's visibility; a number sets every confidence.
    """
    out = np.zeros((count, 3), np.float32)
    if landmarks is None:
        return out
    x0, y0, side = crop
    for k, lm in enumerate(landmarks.landmark[:count]):
        c = float(np.clip(lm.visibility, 0.0, 1.0)) if conf is None else conf
        out[k] = (x0 + lm.x * side, y0 + lm.y * side, c)
    return out


def _hand(landmarks: Any, crop: tuple[float, float, float], wrist: np.ndarray, scale: float) -> np.ndarray:
    """(21, 3) hand in pixels, confidence 1; zeros if absent or away from the tracked ``wrist`` (3,)."""
    hand = _to_pixels(landmarks, N_HAND, crop, 1.0)
    far = float(np.linalg.norm(hand[0, :2] - wrist[:2])) > MAX_WRIST_DISTANCE * scale
    if landmarks is not None and wrist[2] > MIN_CONF and far:
        hand[:] = 0.0
    return hand


def silhouette_in_box(
    mask: np.ndarray, crop: tuple[float, float, float], bbox: np.ndarray, size: int
) -> np.ndarray:
    """Resample a crop's mask to (size, size) uint8 over ``bbox`` (full-frame pixels).

    Args:
        mask: (n, n) float in [0, 1], covering the square ``crop`` (x0, y0, side);
            pixels outside it count as 0.
    """
    x0, y0, side = crop
    k = mask.shape[1] / side  # mask pixels per frame pixel
    bx0, by0, bx1, by1 = (float(v) for v in bbox)
    sx = max(bx1 - bx0, 1.0) / size * k
    sy = max(by1 - by0, 1.0) / size * k
    # Affine map from output pixel centres to mask pixel centres.
    warp = np.array([[sx, 0.0, (bx0 - x0) * k + 0.5 * sx - 0.5], [0.0, sy, (by0 - y0) * k + 0.5 * sy - 0.5]])
    out = cv2.warpAffine(
        np.asarray(mask, np.float32), warp, (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )  # fmt: skip
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def body_arrays(result: Any, crop: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A Holistic or Pose result's body on the square ``crop`` (x0, y0, side).

    Returns:
        (33, 3) float32 full-frame pixels + visibility, and (33, 3) float32 world landmarks
        in metres (origin between the hips); zeros where no body was found.
    """
    body = _to_pixels(result.pose_landmarks, N_BODY, crop, None)
    world = np.zeros((N_BODY, 3), np.float32)
    if result.pose_landmarks is not None and result.pose_world_landmarks is not None:
        for k, lm in enumerate(result.pose_world_landmarks.landmark[:N_BODY]):
            world[k] = (lm.x, lm.y, lm.z)
    return body, world


def holistic_frame(
    result: Any, crop: tuple[float, float, float], body2d: np.ndarray, bbox: np.ndarray, size: int
) -> HolisticFrame:
    """Hands, face and silhouette of a Holistic ``result`` on ``crop``, in full-frame pixels.

    Args:
        body2d: (33, 3) the subject's body in pixels (hands far from its wrists are dropped).
        bbox: (4,) the subject's box; the silhouette is resampled to (size, size) inside it.
    """
    scale = max(float(bbox[2] - bbox[0]), float(bbox[3] - bbox[1]), 1.0)
    mask = result.segmentation_mask
    return HolisticFrame(
        _hand(result.left_hand_landmarks, crop, body2d[LEFT_WRIST], scale),
        _hand(result.right_hand_landmarks, crop, body2d[RIGHT_WRIST], scale),
        _to_pixels(result.face_landmarks, N_FACE, crop, 1.0),
        np.zeros((size, size), np.uint8) if mask is None else silhouette_in_box(mask, crop, bbox, size),
    )


def create_graph(config: DetectConfig, complexity: int, holistic: bool = True) -> Any:
    """A legacy MediaPipe graph in tracking (video) mode on one person.

    ``holistic`` True: Holistic with segmentation (body, hands, face, silhouette); False: Pose
    (body only, cheaper). Both run the same pose landmark model.
    """
    import mediapipe as mp

    common = {
        "static_image_mode": False,
        "model_complexity": complexity,
        "min_detection_confidence": config.min_detection_confidence,
        "min_tracking_confidence": config.min_tracking_confidence,
    }
    if holistic:
        return mp.solutions.holistic.Holistic(enable_segmentation=True, refine_face_landmarks=False, **common)
    return mp.solutions.pose.Pose(enable_segmentation=False, **common)


def effective_complexity(requested: int) -> tuple[int, str | None]:
    """The model complexity to use, and a warning when the requested one is not shipped.

    Only the 'full' pose model (complexity 1) is in the mediapipe 0.10.21 wheel; the others
    would be downloaded at run time, which this project never does.
    """
    import mediapipe

    folder = Path(mediapipe.__file__).resolve().parent / "modules" / "pose_landmark"
    name = _MODEL_FILES.get(int(requested))
    if name is not None and (folder / name).is_file():
        return int(requested), None
    return 1, f"Pose model complexity {requested} is not installed; used complexity 1."


class SubjectHolistic(Closing):
    """One MediaPipe Holistic graph following one subject through the clip (in order)."""

    def __init__(self, config: DetectConfig, complexity: int = 1) -> None:
        self._config = config
        self._complexity = complexity
        self._holistic = self._create()
        self.disagreements = 0
        """Frames where Holistic's body was not the tracked subject (hands/face dropped)."""
        self._streak = 0
        """Consecutive such frames (Holistic restarts after ``RESTART_AFTER``)."""

    def _create(self) -> Any:
        return create_graph(self._config, self._complexity)

    def process(
        self, rgb: np.ndarray, body2d: np.ndarray, bbox: np.ndarray
    ) -> tuple[HolisticFrame, np.ndarray | None, np.ndarray | None, bool]:
        """Holistic on a crop around the subject.

        Args:
            rgb: (H, W, 3) uint8 full frame.
            body2d: (33, 3) the subject's tracked landmarks in pixels with confidence.
            bbox: (4,) the subject's box x0, y0, x1, y1 in pixels.
        Returns:
            hands/face/silhouette (from Holistic's own body), Holistic's body (33, 3) in pixels
            with visibility and its world landmarks (33, 3) (None when it found nobody), and
            whether that body agrees with the tracked one.
        """
        size = self._config.silhouette_size
        height, width = rgb.shape[:2]
        crop = crop_box(bbox, width, height)
        result = self._holistic.process(cut(rgb, crop, CROP_SIZE))
        if result.pose_landmarks is None:
            return empty_frame(size), None, None, False
        body, world = body_arrays(result, crop)
        scale = max(float(bbox[2] - bbox[0]), float(bbox[3] - bbox[1]), 1.0)
        agrees = True
        if (body2d[:, 2] > MIN_CONF).sum() >= 4:
            dist = float(keypoint_distance(body2d[None], body[None], np.array([scale]))[0, 0])
            agrees = dist <= MAX_BODY_DISAGREEMENT
        if agrees:
            self._streak = 0
        else:
            # Holistic may look at someone else (or the tracked body is wrong: the caller
            # decides); restart Holistic if it persists, so that it looks for the subject again.
            self.disagreements += 1
            self._streak += 1
            log.debug("Holistic body disagrees with the tracked body")
            if self._streak >= RESTART_AFTER:
                self._holistic.close()
                self._holistic = self._create()
                self._streak = 0
        return holistic_frame(result, crop, body, bbox, size), body, world, agrees

    def close(self) -> None:
        self._holistic.close()
