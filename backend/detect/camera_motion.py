"""The camera's rotation per frame from the background (a panning or tilting camera), OpenCV only.

Between a key frame and the current frame, corners of the background (outside every detected person's
box, grown a little) are tracked with pyramidal Lucas-Kanade; a homography fitted with RANSAC is, for a
camera that only rotates, ``H = K R K^-1``, which gives the rotation. Measuring against a key frame
(renewed every ``KEY_EVERY`` frames) rather than the previous frame keeps the tiny per-frame motions of a
slow pan from adding up their noise. Rotations are chained to the first frame: frame t's camera
coordinates times ``R_t`` are the first frame's. A camera whose rotations stay below
``STILL_DEG`` over the whole clip is a still camera (``rotations()`` is None), so a tripod shot is
never disturbed by tracking noise. A frame with too little background texture keeps the previous
frame's rotation.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

WORK_WIDTH = 640
"""Frames are tracked at most this wide."""
MIN_TRACKS = 20
"""Fewer background corners than this between two frames: no rotation estimate for that step."""
STILL_DEG = 0.5
"""A clip whose camera never turns further than this from its first frame has a still camera."""
KEY_EVERY = 10
"""A new key frame every this many frames (or when the background can no longer be followed)."""
BOX_MARGIN = 0.15
"""People's boxes are grown by this share of their size before masking them out."""


def _rotation_from_homography(h: np.ndarray, k: np.ndarray) -> np.ndarray | None:
    """The rotation (3, 3) closest to ``K^-1 H K`` (None when that is far from a rotation)."""
    m = np.linalg.inv(k) @ h @ k
    det = np.linalg.det(m)
    if not np.isfinite(det) or det <= 0:
        return None
    u, s, vt = np.linalg.svd(m / np.cbrt(det))
    if s.max() / max(s.min(), 1e-9) > 1.2:  # not a rotation: the camera moved, or a bad fit
        return None
    r = u @ vt
    return r if np.linalg.det(r) > 0 else None


class CameraMotion:
    """Feed every frame (``add``); ``rotations()`` gives (T, 3, 3) frame-t-to-first rotations or None."""

    def __init__(self, intrinsics: np.ndarray, width: int) -> None:
        self.scale = min(1.0, WORK_WIDTH / float(width))
        self.k = np.array(intrinsics, np.float64)
        self.k[:2] *= self.scale
        self._key: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None = None
        """(grey frame, its background corners (None: too few), its rotation to the first frame)."""
        self._since_key = 0
        self._chain: list[np.ndarray] = []
        self.failed = 0

    def _mask(self, shape: tuple[int, int], boxes: list[np.ndarray]) -> np.ndarray:
        mask = np.full(shape, 255, np.uint8)
        for x0, y0, x1, y1 in boxes:
            mx, my = BOX_MARGIN * (x1 - x0), BOX_MARGIN * (y1 - y0)
            a = (int(max(0, (x0 - mx) * self.scale)), int(max(0, (y0 - my) * self.scale)))
            b = (int((x1 + mx) * self.scale), int((y1 + my) * self.scale))
            cv2.rectangle(mask, a, b, 0, thickness=-1)
        return mask

    def add(self, rgb: np.ndarray, boxes: list[np.ndarray]) -> None:
        """One frame (H, W, 3) RGB and the (x0, y0, x1, y1) pixel boxes of the people in it."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.scale < 1.0:
            gray = cv2.resize(gray, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        mask = self._mask(gray.shape, boxes)
        lost = False
        if self._key is None:
            rotation = np.eye(3)
        else:
            key_gray, key_corners, key_rotation = self._key
            step = self._step(key_gray, gray, key_corners)
            lost = step is None
            if lost:
                self.failed += 1
                rotation = self._chain[-1]  # keep the last known orientation
            else:
                rotation = key_rotation @ step.T  # R_t = R_key (cur_from_key)^T
        self._chain.append(rotation)
        self._since_key += 1
        if self._key is None or lost or self._since_key >= KEY_EVERY:
            corners = cv2.goodFeaturesToTrack(gray, maxCorners=400, qualityLevel=0.01, minDistance=7, mask=mask)
            usable = corners is not None and len(corners) >= MIN_TRACKS
            self._key, self._since_key = (gray, corners if usable else None, rotation), 0

    def _step(self, prev: np.ndarray, cur: np.ndarray, corners: np.ndarray | None) -> np.ndarray | None:
        """cur-from-prev camera rotation from ``prev``'s background ``corners`` (N, 1, 2), or None."""
        if corners is None:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, corners, None, winSize=(21, 21), maxLevel=3)
        ok = status.ravel() == 1
        if ok.sum() < MIN_TRACKS:
            return None
        h, inliers = cv2.findHomography(corners[ok], moved[ok], cv2.RANSAC, 1.5)
        if h is None or inliers is None or inliers.sum() < MIN_TRACKS:
            return None
        return _rotation_from_homography(h, self.k)

    def chain(self) -> np.ndarray:
        """(T, 3, 3) every frame fed so far: its camera to the first frame's (identity for the first)."""
        return np.stack(self._chain)

    def rotations(self) -> np.ndarray | None:
        """(T, 3, 3) each frame's camera to the first frame's, or None for a still camera."""
        return still_or_turning(self.chain(), self.failed)



def still_or_turning(chain: np.ndarray, failed: int = 0) -> np.ndarray | None:
    """``chain`` (T, 3, 3), or None when the camera never turns ``STILL_DEG`` from the first frame."""
    angles = np.degrees(np.arccos(np.clip((np.trace(chain, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    if len(chain) < 2 or float(angles.max()) < STILL_DEG:
        return None
    log.info("camera turns by up to %.1f deg over the clip (%d frames without a background estimate)",
             float(angles.max()), failed)  # fmt: skip
    return chain
