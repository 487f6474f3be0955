"""Foot contact and the ground plane: estimation and the fit's terms (pure functions + a small holder).

The four foot points are the heel and big-toe keypoints of each foot. Positions are "static": in the
first frame's camera frame, through the per-frame camera rotations (identity for a still camera), so
that a planted foot stays put even when the camera pans. The ground is one plane per clip,
``n . x + d = 0`` (``n`` a unit normal pointing up, against gravity), on which the soles stand; each
foot point rests ``rest_height`` above it.

- :func:`contact_probabilities`: per frame and point, slow and at the lowest height it reaches
  nearby in time (logistic fall-offs): a jump leaves the ground, a box top supports like the floor;
  missed frames take their neighbours' values.
- :func:`initial_ground`: the lowest level the feet stand on (several contacts), a plane through
  those soles, tilted at most a little from the torso's mean up direction.
- Terms: ``contact_still`` (a point in contact does not move), ``contact_height`` (a contact near the
  ground stands on it), ``below_ground`` (no point below the ground, contact or not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from backend.geometry.linalg import unit

GROUND_PERCENTILE = 5.0
"""Without contacts, the ground passes under the lowest few percent of foot-point heights."""
CONTACT_HEIGHT_M = 0.10
"""A foot point this much above the lowest it gets nearby in time is unlikely to be in contact."""
CONTACT_SPEED_MPS = 0.8
"""A foot point faster than this is unlikely to be in contact."""
SUPPORT_WINDOW_S = 0.35
"""How far in time (each way) the lowest height of a foot point is looked for."""
MIN_SUPPORT_POINTS, SUPPORT_SHARE = 8, 0.05
"""The ground is the lowest level holding at least this many (and this share of) contact points..."""
LEVEL_TOLERANCE_M = 0.04
"""...within this height of each other."""
MIN_PLANE_SPREAD_M, MAX_TILT_DEG = 0.1, 25.0
"""A plane is fitted through the level's soles only when they spread this far (RMS, metres), and kept
only within this angle of the torso's up direction."""
NEAR_GROUND_M = 0.1
"""Contacts within this height of the ground are pulled onto it (a box top is not the ground)."""
MAX_BRIDGED_FRAMES = 3
"""Contacts carry across at most this many missed frames (a planted foot stays planted)."""
BELOW_SCALE_M = 0.1
"""Feet much deeper than this below the ground count little more (robust to wild bridged frames)."""
STILL_LAGS = (1, 4, 8)
SURE_CONTACT = 0.5
"""Frame spans over which a planted foot point must not move, and the contact probability above which
spans longer than one frame count (``contact_still``)."""
GROUND_STEP = 0.1
"""Scale of the ground parameters (its steps are a tenth of the body's)."""


def static_points(points: torch.Tensor, rotations: torch.Tensor | None) -> torch.Tensor:
    """Camera-frame points (T, N, 3) in the first frame's camera frame (rotations (T, 3, 3): frame t's
    camera to the first one's; None: a still camera)."""
    return points if rotations is None else points @ rotations.transpose(-1, -2)


def _sliding_min(values: np.ndarray, half: int) -> np.ndarray:
    """Minimum over frames t - half .. t + half of (T, N) values."""
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    return np.stack([padded[k : k + len(values)] for k in range(2 * half + 1)]).min(0)


def image_speeds(
    pixels: np.ndarray,
    depth: np.ndarray,
    intrinsics: np.ndarray,
    rotations: np.ndarray | None,
    times: np.ndarray,
) -> np.ndarray:
    """(T, N) speeds (m/s) across the line of sight of image points (T, N, 2) at ``depth`` (T, N) metres:
    the turn of each point's viewing ray (in the first frame's camera frame, through ``rotations``
    (T, 3, 3) of a moving camera) per second, times its depth. Depth noise scales it a little, but does
    not add to it, unlike the speed of fitted 3D points."""
    rays = np.concatenate([pixels, np.ones(pixels.shape[:-1] + (1,))], -1) @ np.linalg.inv(intrinsics).T
    if rotations is not None:
        rays = np.einsum("tij,tnj->tni", rotations, rays)
    length = np.linalg.norm(rays, axis=-1)  # the rays had z = 1 in their own camera: range = depth * length
    rays /= length[..., None]
    if len(rays) < 2:
        return np.zeros(rays.shape[:2])
    dt = np.maximum(np.gradient(np.asarray(times, np.float64)), 1e-3)[:, None]
    return np.linalg.norm(np.gradient(rays, axis=0), axis=-1) / dt * depth * length


def contact_probabilities(
    points: np.ndarray,
    up: np.ndarray,
    times: np.ndarray,
    valid: np.ndarray,
    seen_speed: np.ndarray | None = None,
) -> np.ndarray:
    """(T, 4) contact probabilities of static foot points (T, 4, 3): slow, and at the lowest height the
    point reaches within ``SUPPORT_WINDOW_S`` (a jump leaves it; a box top or the floor both support
    it); frames that are not ``valid`` take the nearest valid frame's value. ``seen_speed`` (T, 4) m/s,
    from the detections (:func:`image_speeds`; NaN where unknown), counts where it is the slower: the
    fitted points' own speed carries their depth jitter."""
    t = len(points)
    heights = points @ up
    if t < 2:
        return np.ones((t, 4), np.float32)
    dt = np.maximum(np.gradient(np.asarray(times, np.float64)), 1e-3)[:, None]
    speed = np.linalg.norm(np.gradient(points, axis=0), axis=-1) / dt
    if seen_speed is not None:
        speed = np.fmin(speed, seen_speed)
    half = max(1, int(round(SUPPORT_WINDOW_S / float(np.median(dt)))))
    above = heights - _sliding_min(heights, half)
    p_low = 1.0 / (1.0 + np.exp((above - CONTACT_HEIGHT_M) / (0.25 * CONTACT_HEIGHT_M)))
    p_slow = 1.0 / (1.0 + np.exp((speed - CONTACT_SPEED_MPS) / (0.25 * CONTACT_SPEED_MPS)))
    prob = (p_low * p_slow).astype(np.float32)
    if valid.any() and not valid.all():  # short gaps take the nearest valid frame's contacts, long ones none
        good = np.flatnonzero(valid)
        gap = np.abs(np.arange(t)[:, None] - good[None])
        prob = np.where((gap.min(1) <= MAX_BRIDGED_FRAMES)[:, None], prob[good[gap.argmin(1)]], 0.0)
    return prob.astype(np.float32)


def initial_ground(
    soles: np.ndarray, contact: np.ndarray, up: np.ndarray, seen: np.ndarray
) -> tuple[np.ndarray, float]:
    """(normal (3,), offset) of the ground under soles (T, 4, 3): the lowest level on which the feet
    stand (several contacts), a plane through those soles when they spread enough, else level with
    ``up``; but never above the lowest few percent of the soles of ``seen`` (T,) frames (feet that
    run over a lower floor touch it between strides, slow or not)."""
    floor = float(np.percentile(soles[seen].reshape(-1, 3) @ up, GROUND_PERCENTILE)) if seen.any() else None
    points = soles[(contact > 0.5) & seen[:, None]]
    if len(points) < MIN_SUPPORT_POINTS:  # hardly a contact: the lowest soles
        return up, -(floor if floor is not None else float(np.percentile(soles.reshape(-1, 3) @ up, 5)))
    heights = points @ up
    order = np.sort(heights)
    need = max(MIN_SUPPORT_POINTS, int(SUPPORT_SHARE * len(points)))
    level = next(
        (
            h
            for h in order
            if ((heights > h - LEVEL_TOLERANCE_M) & (heights < h + LEVEL_TOLERANCE_M)).sum() >= need
        ),
        float(np.median(heights)),
    )
    if floor is not None and floor < level - NEAR_GROUND_M:  # the feet go well below the contacts' level
        return up, -floor
    on = points[np.abs(heights - level) < LEVEL_TOLERANCE_M]
    normal = up
    centred = on - on.mean(0)
    _, spread, vt = np.linalg.svd(centred, full_matrices=False)
    if len(on) >= MIN_SUPPORT_POINTS and spread[1] / np.sqrt(len(on)) > MIN_PLANE_SPREAD_M:
        candidate = vt[-1] * np.sign(vt[-1] @ up)
        if candidate @ up > np.cos(np.radians(MAX_TILT_DEG)):
            normal = unit(candidate)
    return normal, -float(np.median(on @ normal))


def contact_still(points: torch.Tensor, contact: torch.Tensor) -> torch.Tensor:
    """Mean squared displacement (m^2) of foot points (T, 4, 3) between frames in contact (T, 4), averaged
    over the spans ``STILL_LAGS``: over one frame weighted by the product of the two probabilities; over
    longer spans only where the contact is sure throughout (weights rise from 0 at probability
    ``SURE_CONTACT`` to 1 at 1), so that a slow creep, which steps of one frame hardly see, adds up
    while a heel that starts to roll off is left free."""
    terms = []
    for lag in STILL_LAGS:
        if points.shape[0] <= lag:
            continue
        if lag == 1:
            w = contact[1:] * contact[:-1]
        else:
            least = contact.unfold(0, lag + 1, 1).amin(-1)  # (T - lag, 4)
            w = ((least - SURE_CONTACT) / (1.0 - SURE_CONTACT)).clamp(min=0.0).pow(2)
        step = (points[lag:] - points[:-lag]).pow(2).sum(-1)
        terms.append((w * step).sum() / w.sum().clamp(min=1.0))
    return torch.stack(terms).mean() if terms else points.new_zeros(())


def contact_height(heights: torch.Tensor, contact: torch.Tensor) -> torch.Tensor:
    """Mean squared height (m^2) above the ground of points in contact near it (within about
    ``NEAR_GROUND_M``: a box top is not the ground); heights, contact (T, 4)."""
    w = contact * torch.exp(-(heights.detach() / NEAR_GROUND_M).pow(2))
    return (w * heights.pow(2)).sum() / w.sum().clamp(min=1.0)


def below_ground(heights: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean robust squared depth (m^2) of foot points below the ground (T, 4), per-frame ``weights`` (T,)
    (0 where the subject was not seen): Geman-McClure with scale ``BELOW_SCALE_M``, so that a few wild
    bridged frames cannot drag the clip. Pass heights over a detached ground (the feet move up, the
    ground does not move down)."""
    depth2 = torch.relu(-heights).pow(2)
    robust = depth2 * BELOW_SCALE_M**2 / (depth2 + BELOW_SCALE_M**2)
    return (weights[:, None] * robust).sum() / (4.0 * weights.sum().clamp(min=1.0))


class GroundParams(torch.nn.Module):
    """The ground plane as parameters: a small rotation of the initial normal and a shift of the initial
    offset, both scaled by ``GROUND_STEP``."""

    def __init__(self, normal: np.ndarray, offset: float) -> None:
        super().__init__()
        self.register_buffer("normal0", torch.as_tensor(normal, dtype=torch.float32))
        self.register_buffer("offset0", torch.tensor(float(offset)))
        self.tilt = torch.nn.Parameter(torch.zeros(3))
        self.shift = torch.nn.Parameter(torch.zeros(()))

    def reset(self, normal: np.ndarray, offset: float) -> None:
        with torch.no_grad():
            self.normal0.copy_(torch.as_tensor(normal, dtype=torch.float32))
            self.offset0.fill_(float(offset))
            self.tilt.zero_()
            self.shift.zero_()

    def normal(self) -> torch.Tensor:
        return roma.rotvec_to_rotmat(GROUND_STEP * self.tilt) @ self.normal0

    def offset(self) -> torch.Tensor:
        return self.offset0 + GROUND_STEP * self.shift

    def heights(
        self, points: torch.Tensor, rest_height: torch.Tensor, detached: bool = False
    ) -> torch.Tensor:
        """Heights (..., 4) of static foot points (..., 4, 3) above their rest height over the ground."""
        normal, offset = self.normal(), self.offset()
        if detached:
            normal, offset = normal.detach(), offset.detach()
        return points @ normal + offset - rest_height


@dataclass
class FootContacts:
    """The contact stage's fixed inputs: probabilities and each point's rest height above the ground."""

    contact: torch.Tensor
    """(T, 4) probabilities."""
    rest_height: torch.Tensor
    """(4,) metres between each foot point and the sole's plane when the foot stands flat."""
    rotations: torch.Tensor | None
    """(T, 3, 3) each frame's camera to the first one's; None for a still camera."""
    seen: torch.Tensor
    """(T,) 1 where the subject was detected, else 0."""
