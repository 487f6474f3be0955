"""Multi-view ground truth from calibrated cameras (numpy and OpenCV only): the real bench's builder.

Qualisys calibration (``.qca.txt``, as shipped in Pose2Sim's demos) -> cameras; weighted DLT with
RANSAC over view subsets; per-camera principal-point refinement against the triangulated points;
left/right repair per limb chain; association of several people's detections across views; short gaps
filled and a zero-phase low-pass filter. Points are in the calibration's world frame (metres), pixels in
the videos' own frames, landmarks in MediaPipe Pose's 33-point order.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

SCORED = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
"""MediaPipe indices of the bench's 12 joints (shoulders, elbows, wrists, hips, knees, ankles; L, R)."""
EXTENDED = SCORED + (0, 7, 8, 29, 30, 31, 32)
"""Plus nose, ears, heels and foot tips (the realbench's ``names_ext``)."""
CHAINS = (((11, 13, 15, 17, 19, 21), (12, 14, 16, 18, 20, 22)), ((23, 25, 27, 29, 31), (24, 26, 28, 30, 32)))
"""Left and right arm and leg chains: MediaPipe swaps a whole chain when it confuses sides."""
ASSOCIATION_JOINTS = (11, 12, 23, 24, 13, 14, 25, 26)
_QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Camera:
    """A calibrated camera: x_cam = R x_world + t (OpenCV axes), pixels = K distort(x / z)."""

    name: str
    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    dist: np.ndarray
    """(5,) OpenCV k1, k2, p1, p2, k3."""

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world -> (..., 3) this camera's frame."""
        return points @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world -> (N, 2) pixels, lens distortion included."""
        rvec = cv2.Rodrigues(self.R)[0]
        pts = np.asarray(points, np.float64).reshape(-1, 1, 3)
        return cv2.projectPoints(pts, rvec, self.t, self.K, self.dist)[0].reshape(-1, 2)

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) undistorted normalised image coordinates."""
        pts = np.asarray(pixels, np.float64).reshape(-1, 1, 2)
        return cv2.undistortPoints(pts, self.K, self.dist).reshape(-1, 2)


def read_qualisys(path: Path) -> dict[str, Camera]:
    """The cameras of a Qualisys ``.qca.txt`` file, by serial (e.g. ``cam01``).

    Qualisys stores each camera's position (mm) and a rotation whose transpose turns camera axes
    (x right, y up, looking along -z) into the world's; intrinsics are in 1/64 pixels.
    """
    root = ET.parse(path).getroot()
    cameras = {}
    for node in root.findall("cameras/camera"):
        tr, it = node.find("transform").attrib, node.find("intrinsic").attrib  # type: ignore[union-attr]
        m = np.array([[float(tr[f"r{i}{j}"]) for j in (1, 2, 3)] for i in (1, 2, 3)])
        position = np.array([float(tr[k]) for k in "xyz"]) / 1000.0
        cam_to_world = m.T @ _QUALISYS_TO_OPENCV
        K = np.array([
            [float(it["focalLengthU"]) / 64, 0.0, float(it["centerPointU"]) / 64],
            [0.0, float(it["focalLengthV"]) / 64, float(it["centerPointV"]) / 64],
            [0.0, 0.0, 1.0],
        ])  # fmt: skip
        dist = np.array([float(it[k]) for k in ("radialDistortion1", "radialDistortion2", "tangentalDistortion1",
                                                 "tangentalDistortion2", "radialDistortion3")])  # fmt: skip
        name = node.attrib["serial"]
        cameras[name] = Camera(name, cam_to_world.T, -cam_to_world.T @ position, K, dist)
    return cameras


def dlt(cameras: list[Camera], normalised: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation: V cameras, (V, 2) normalised points, (V,) weights -> (3,)."""
    rows = []
    for cam, (u, v), w in zip(cameras, normalised, weights, strict=True):
        P = np.hstack([cam.R, cam.t[:, None]])
        rows += [w * (u * P[2] - P[0]), w * (v * P[2] - P[1])]
    X = np.linalg.svd(np.array(rows))[2][-1]
    return X[:3] / X[3]


def triangulate_point(
    cameras: list[Camera], obs: np.ndarray, max_px: float = 30.0
) -> tuple[np.ndarray | None, int]:
    """One point seen by V cameras: obs (V, 3) pixels and confidence (NaN: unseen).

    RANSAC over view subsets: the largest set of views whose reprojection errors are all under
    ``max_px`` (ties: the smaller mean error), re-solved on that set. Returns (point or None, views).
    """
    seen = [i for i in range(len(cameras)) if np.isfinite(obs[i, 0]) and obs[i, 2] > 0.05]
    if len(seen) < 2:
        return None, 0
    norm = {i: cameras[i].normalise(obs[i, :2])[0] for i in seen}

    def solve(views: tuple[int, ...]) -> np.ndarray:
        return dlt([cameras[i] for i in views], np.array([norm[i] for i in views]),
                   np.array([max(float(obs[i, 2]), 0.1) for i in views]))  # fmt: skip

    best: tuple[tuple[int, ...], float] = ((), np.inf)
    for k in range(len(seen), 1, -1):
        for views in itertools.combinations(seen, k):
            X = solve(views)
            errors = {i: float(np.linalg.norm(cameras[i].project(X)[0] - obs[i, :2])) for i in seen}
            inliers = tuple(i for i in seen if errors[i] < max_px and cameras[i].to_camera(X)[2] > 0)
            mean = float(np.mean([errors[i] for i in inliers])) if inliers else np.inf
            if len(inliers) >= 2 and (len(inliers), -mean) > (len(best[0]), -best[1]):
                best = (inliers, mean)
        if len(best[0]) == len(seen):
            break
    return (solve(best[0]), len(best[0])) if best[0] else (None, 0)


def triangulate(cameras: list[Camera], obs: np.ndarray, landmarks: tuple[int, ...] = EXTENDED) -> np.ndarray:
    """obs (V, T, 33, 3) -> (T, len(landmarks), 3) world points, NaN where fewer than 2 views agree."""
    T = obs.shape[1]
    out = np.full((T, len(landmarks), 3), np.nan)
    for t in range(T):
        for j, m in enumerate(landmarks):
            X, _ = triangulate_point(cameras, obs[:, t, m])
            if X is not None:
                out[t, j] = X
    return out


def reprojection_px(cameras: list[Camera], obs: np.ndarray, points: np.ndarray,
                    landmarks: tuple[int, ...] = EXTENDED) -> np.ndarray:  # fmt: skip
    """Median reprojection error per camera (V,) of points (T, J, 3) against obs (V, T, 33, 3)."""
    out = []
    for v, cam in enumerate(cameras):
        flat = np.nan_to_num(points.reshape(-1, 3))
        pix = cam.project(flat).reshape(points.shape[:-1] + (2,))
        err = np.linalg.norm(pix - obs[v][:, list(landmarks), :2], axis=-1)
        err[~np.isfinite(points[..., 0])] = np.nan
        out.append(np.nanmedian(err))
    return np.array(out)


def refine_principal_points(cameras: list[Camera], obs: np.ndarray, points: np.ndarray,
                            landmarks: tuple[int, ...] = EXTENDED) -> list[Camera]:  # fmt: skip
    """Each camera's principal point moved by the median residual of confident observations.

    A video resized or cropped against the calibration's frames keeps the focal length but shifts
    the image centre by a few pixels; the triangulated points fix it.
    """
    out = []
    for v, cam in enumerate(cameras):
        flat = points.reshape(-1, 3)
        o = obs[v][:, list(landmarks)].reshape(-1, 3)
        ok = np.isfinite(flat[:, 0]) & np.isfinite(o[:, 0]) & (o[:, 2] > 0.5)
        residual = o[ok, :2] - cam.project(flat[ok])
        K = cam.K.copy()
        K[:2, 2] += np.median(residual, axis=0)
        out.append(replace(cam, K=K))
    return out


def repair_sides(cameras: list[Camera], obs: np.ndarray, points: np.ndarray,
                 landmarks: tuple[int, ...] = EXTENDED) -> tuple[np.ndarray, int]:  # fmt: skip
    """Swap a view's left and right chain where the swapped labels reproject at least twice as well
    (and the kept ones are off by over 30 px). Returns (repaired obs, number of swaps)."""
    fixed, swaps = obs.copy(), 0
    for v, cam in enumerate(cameras):
        for t in range(obs.shape[1]):
            for left, right in CHAINS:
                lj = [m for m in left if m in landmarks]
                rj = [m for m in right if m in landmarks]
                XL = points[t, [landmarks.index(m) for m in lj]]
                XR = points[t, [landmarks.index(m) for m in rj]]
                oL, oR = obs[v, t, lj, :2], obs[v, t, rj, :2]
                if not (np.isfinite(XL).all() and np.isfinite(XR).all() and np.isfinite(oL).all()):
                    continue
                pL, pR = cam.project(XL), cam.project(XR)
                keep = np.linalg.norm(pL - oL, axis=1).mean() + np.linalg.norm(pR - oR, axis=1).mean()
                swap = np.linalg.norm(pL - oR, axis=1).mean() + np.linalg.norm(pR - oL, axis=1).mean()
                if swap < 0.5 * keep and keep > 30.0:
                    fixed[v, t, lj], fixed[v, t, rj] = obs[v, t, rj], obs[v, t, lj]
                    swaps += 1
    return fixed, swaps


@dataclass(frozen=True)
class Cluster:
    """One person in one frame: which detection each view holds (-1: none) and where they stand."""

    choice: tuple[int, ...]
    centre: np.ndarray
    error_px: float


def _cluster(cameras: list[Camera], norm: np.ndarray, pix: np.ndarray, choice: tuple[int, ...]) -> Cluster:
    """Triangulate the association joints of one choice of detections; norm, pix: (V, P, 33, 2)."""
    views = [(v, p) for v, p in enumerate(choice) if p >= 0]
    errors, points = [], []
    for m in ASSOCIATION_JOINTS:
        X = dlt(
            [cameras[v] for v, _ in views], np.array([norm[v, p, m] for v, p in views]), np.ones(len(views))
        )
        points.append(X)
        errors += [np.linalg.norm(cameras[v].project(X)[0] - pix[v, p, m]) for v, p in views]
    return Cluster(choice, np.mean(points, axis=0), float(np.median(errors)))


def associate(
    cameras: list[Camera], people: np.ndarray, max_px: float = 20.0, max_people: int = 3
) -> list[Cluster]:
    """Everyone seen by at least two views in one frame: people (V, P, 33, 3), NaN rows for no one.

    Greedy: the choice of one detection (or none) per view that is seen by the most views with a
    median reprojection error under ``max_px`` (ties: the smaller error), then the next among the rest.
    """
    V, P = people.shape[:2]
    pix = people[..., :2].astype(np.float64)
    norm = np.stack(
        [cameras[v].normalise(np.nan_to_num(pix[v]).reshape(-1, 2)).reshape(P, 33, 2) for v in range(V)]
    )
    free = [{p for p in range(P) if np.isfinite(people[v, p, 0, 0])} for v in range(V)]
    found: list[Cluster] = []
    for _ in range(max_people):
        best: Cluster | None = None
        for choice in itertools.product(*[[-1, *sorted(f)] for f in free]):
            k = sum(p >= 0 for p in choice)
            if k < 2:
                continue
            c = _cluster(cameras, norm, pix, choice)
            if c.error_px < max_px and (
                best is None or (k, -c.error_px) > (sum(p >= 0 for p in best.choice), -best.error_px)
            ):
                best = c
        if best is None:
            break
        found.append(best)
        for v, p in enumerate(best.choice):
            free[v].discard(p)
    return found


def link(frames: list[list[Cluster]], max_step_m: float = 0.3) -> list[dict[int, Cluster]]:
    """Tracks over time: each frame's clusters joined to the track whose last centre is nearest
    (within ``max_step_m``), or starting a new one. Returns tracks (frame -> cluster), longest first."""
    tracks: list[dict[int, Cluster]] = []
    for t, clusters in enumerate(frames):
        taken: set[int] = set()
        for c in sorted(clusters, key=lambda c: -sum(p >= 0 for p in c.choice)):
            dist = [np.linalg.norm(tr[max(tr)].centre - c.centre) if i not in taken else np.inf
                    for i, tr in enumerate(tracks)]  # fmt: skip
            i = int(np.argmin(dist)) if dist else -1
            if i >= 0 and dist[i] < max_step_m:
                tracks[i][t] = c
                taken.add(i)
            else:
                tracks.append({t: c})
                taken.add(len(tracks) - 1)
    return sorted(tracks, key=len, reverse=True)


def track_observations(people: np.ndarray, track: dict[int, Cluster]) -> np.ndarray:
    """(V, T, 33, 3) the track's detection in every view and frame (NaN where none) from (V, T, P, 33, 3)."""
    V, T = people.shape[:2]
    out = np.full((V, T, 33, 3), np.nan, np.float32)
    for t, cluster in track.items():
        for v, p in enumerate(cluster.choice):
            if p >= 0:
                out[v, t] = people[v, t, p]
    return out


def fill_and_filter(points: np.ndarray, fps: float, max_gap: int = 4, cutoff_hz: float = 6.0) -> np.ndarray:
    """(T, J, 3) with NaN -> gaps of at most ``max_gap`` frames interpolated, longer ones left NaN, and
    every finite run of at least 16 frames low-passed (4th-order Butterworth, zero phase)."""
    from scipy.signal import butter, filtfilt

    T, J, _ = points.shape
    out = np.full_like(points, np.nan)
    b, a = butter(4, cutoff_hz / (fps / 2))
    for j in range(J):
        known = np.flatnonzero(np.isfinite(points[:, j, 0]))
        if len(known) < 2:
            continue
        usable = np.zeros(T, bool)
        usable[known] = True
        for s, e in zip(known[:-1], known[1:], strict=True):
            if e - s <= max_gap + 1:
                usable[s:e] = True
        for k in range(3):
            out[:, j, k] = np.where(usable, np.interp(np.arange(T), known, points[known, j, k]), np.nan)
        edges = np.flatnonzero(np.diff(np.r_[0, usable.astype(int), 0]))
        for s, e in zip(edges[::2], edges[1::2], strict=True):
            if e - s >= 16:
                out[s:e, j] = filtfilt(b, a, out[s:e, j], axis=0, padlen=min(12, e - s - 1))
    return out
