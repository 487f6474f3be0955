"""Re-identification: appearance descriptors of people and re-linking of tracks by them.

Each detected person gets a small appearance descriptor (clothing colour of the torso and
thighs, body proportions from world landmarks), computed in :mod:`backend.detect.multi`.
:func:`relink` joins the tracks of one person lost for a while (out of view, or too fast for
the detector) when their descriptors agree and no rival track is as similar.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from backend.detect.track import MIN_CONF, Track

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
RELINK_MAX_GAP = 90
"""Frames between two tracks (about 3 s) up to which :func:`relink` may join them."""
RELINK_MIN_SIMILARITY = 0.5
"""Least :func:`appearance_similarity` for two tracks to be one person."""
RELINK_MARGIN = 0.05
"""How much more similar a pair must be than any rival pair that excludes it."""
RATIO_SCALE = 0.05
"""Body-proportion difference at which the similarity falls to 1/e of the colour similarity."""


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

    Raised arms pull the shoulders in and up, so the shoulder ratio is only measured with
    both elbows hanging toward the hips (by a fifth of the torso length, along the torso).

    Args:
        world: (33, 3) metres; kp: (33, 3) pixel landmarks, only for their confidence.
    Returns:
        (N_RATIOS,) float32, NaN where not measured (shoulders or hips not confident).
    """
    out = np.full(N_RATIOS, np.nan, np.float32)
    if kp[[*_SHOULDERS, *_HIPS], 2].min() <= MIN_CONF:
        return out
    w = world.astype(np.float64)
    torso = 0.5 * (np.linalg.norm(w[11] - w[23]) + np.linalg.norm(w[12] - w[24]))
    if torso < 1e-3:
        return out
    down = (w[[23, 24]] - w[[11, 12]]).mean(0) / torso
    hang = (w[[13, 14]] - w[[11, 12]]) @ down
    if kp[[13, 14], 2].min() > MIN_CONF and hang.min() > 0.2 * torso:
        out[0] = np.linalg.norm(w[11] - w[12]) / torso
    out[1] = np.linalg.norm(w[23] - w[24]) / torso
    return out


def track_appearance(
    det: np.ndarray, colour: Sequence[np.ndarray], ratios: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """A track's mean colour histograms and median body proportions.

    Args:
        det: (T,) detection index per frame or -1; colour: T arrays (P_t, R, B) histograms
            (rows of zeros where a region was not seen); ratios: T arrays (P_t, S), NaN if unknown.
    Returns:
        (R, B) mean histogram of each region over the frames where it was seen (zeros if
        never) and (S,) median proportions (NaN if never known).
    """
    seen = np.flatnonzero(det >= 0)
    hist = np.stack([colour[t][det[t]] for t in seen]).astype(np.float64)
    found = hist.sum(-1, keepdims=True) > 0
    mean = (hist * found).sum(0) / np.maximum(found.sum(0), 1)
    rat = np.stack([ratios[t][det[t]] for t in seen]).astype(np.float64)
    median = [np.median(r[~np.isnan(r)]) if (~np.isnan(r)).any() else np.nan for r in rat.T]
    return mean, np.array(median, np.float64)


def appearance_similarity(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Similarity in [0, 1] of two :func:`track_appearance` outputs.

    The least Bhattacharyya coefficient over the regions seen in both (every region must
    match), times ``exp(-(d / RATIO_SCALE)^2)`` with d the largest body-proportion difference.
    0 when the two share no region or no known proportion.
    """
    both = (a[0].sum(-1) > 0) & (b[0].sum(-1) > 0)
    diff = np.abs(a[1] - b[1])
    diff = diff[~np.isnan(diff)]
    if not both.any() or diff.size == 0:
        return 0.0
    colour = float(np.sqrt(a[0][both] * b[0][both]).sum(-1).min())
    return colour * float(np.exp(-((diff.max() / RATIO_SCALE) ** 2)))


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def relink(
    tracks: Sequence[Track],
    colour: Sequence[np.ndarray],
    ratios: Sequence[np.ndarray],
    max_gap: int = RELINK_MAX_GAP,
    min_similarity: float = RELINK_MIN_SIMILARITY,
    frame_index: Sequence[int] | None = None,
) -> list[Track]:
    """Join tracks of one person separated in time, by appearance; renumber by prominence.

    A pair (A ends before B starts, at most ``max_gap`` frames between) is a candidate when
    :func:`appearance_similarity` reaches ``min_similarity``. Greedily, most similar first, a
    pair is joined only if it beats by ``RELINK_MARGIN`` every rival: another candidate of A
    overlapping B in time, or of B overlapping A (only one of them can continue the person).
    Tracks overlapping in time are never joined. Appearances are recomputed after each join.

    Args:
        tracks: from :func:`associate`; colour: T arrays (P_t, R, B); ratios: T arrays (P_t, S).
        frame_index: (T,) source frame numbers, only to print frame ranges in the log.
    Returns:
        The tracks, joined ones with ``pieces`` set, numbered by prominence (0 = most prominent).
    """
    none = np.zeros(len(colour), bool)
    groups = [(tr.det.copy(), tr.prominence, tr.segments(), none if tr.left_out is None else tr.left_out)
              for tr in tracks]  # fmt: skip
    index = np.arange(len(colour)) if frame_index is None else np.asarray(frame_index)

    def name(span: tuple[int, int]) -> str:
        return f"{index[span[0]]}-{index[span[1]]}"

    while True:
        looks = [track_appearance(det, colour, ratios) for det, _, _, _ in groups]
        spans = [(pieces[0][0], pieces[-1][1]) for _, _, pieces, _ in groups]
        sim: dict[tuple[int, int], float] = {}
        for i, (_, last) in enumerate(spans):
            for j, (first, _) in enumerate(spans):
                if last < first and first - last - 1 <= max_gap:
                    sim[i, j] = appearance_similarity(looks[i], looks[j])
                    log.debug("Re-link candidate %s -> %s: %.3f", name(spans[i]), name(spans[j]), sim[i, j])
        pick = None
        for (i, j), s in sorted(sim.items(), key=lambda kv: -kv[1]):
            if s < min_similarity:
                break
            rivals = [v for (a, b), v in sim.items() if a == i and b != j and _overlap(spans[b], spans[j])]
            rivals += [v for (a, b), v in sim.items() if b == j and a != i and _overlap(spans[a], spans[i])]
            if all(s >= v + RELINK_MARGIN for v in rivals):
                pick = (i, j)
                break
            log.info("Not re-linking %s -> %s: a rival is as similar", name(spans[i]), name(spans[j]))
        if pick is None:
            break
        (da, pa, sa, la), (db, pb, sb, lb) = groups[pick[0]], groups[pick[1]]
        a, b = (name(spans[k]) for k in pick)
        log.info("Re-linked the person of frames %s to frames %s (similarity %.3f)", a, b, sim[pick])
        groups = [g for k, g in enumerate(groups) if k not in pick]
        groups.append((np.where(da >= 0, da, db), pa + pb, sa + sb, la | lb))
    groups.sort(key=lambda g: (-g[1], g[2][0][0]))
    return [Track(k, det, p, pcs if len(pcs) > 1 else (), out if out.any() else None)
            for k, (det, p, pcs, out) in enumerate(groups)]  # fmt: skip
