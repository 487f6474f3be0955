"""``python -m backend bench build-real``: a second real-footage bench from Pose2Sim's demo captures.

The realbench (``../shared/realbench``) is 1.7 s of one man. The PyPI wheel ``pose2sim==0.10.49``
(BSD-3-Clause) ships, beside that capture (``Demo_SinglePerson``), another one by the same four
calibrated cameras: ``Demo_MultiPerson``, the man dancing on a treadmill while a woman walks around
him (100 frames, 60 fps, 1088x1920). This builds its ground truth the realbench's way: MediaPipe 2D
in all four views, people associated across views, RANSAC triangulation, left/right repair, short
gaps filled, a 6 Hz zero-phase filter. The cameras' principal points are refined on the single-person
capture (one person, four views) and kept for the other. Built on ``Demo_SinglePerson`` the same
way, the ground truth agrees with the realbench's (the ``check`` line of the log).

The result is a realbench folder (``gt.npz`` in its format, plus ``views``: one per camera and
person, ``video_<view>``, ``people_<view>``; the videos; the licence) that ``bench real --data``
runs. Frames where the truth is unknown (a person seen by fewer than two cameras) are NaN and not
scored.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.errors import BadInput
from backend.io.atomic import atomic_path
from bench import metrics
from bench.triangulate import (
    SCORED,
    Camera,
    associate,
    fill_and_filter,
    link,
    read_qualisys,
    refine_principal_points,
    repair_sides,
    reprojection_px,
    track_observations,
    triangulate,
)

log = logging.getLogger(__name__)

WHEEL = "pose2sim-0.10.49-py3-none-any.whl"
WHEEL_SHA256 = "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
CAMERAS = ("cam01", "cam02", "cam03", "cam04")
NAMES = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
         "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")  # fmt: skip
NAMES_EXT = NAMES + (
    "nose",
    "left_ear",
    "right_ear",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
FPS = 60.0
MIN_FRAMES = 30
"""A person enters the bench in a view with at least this many frames of known truth, where that
view's detector saw them in at least half of those frames."""


@dataclass(frozen=True)
class Capture:
    """One demo capture: its four videos and their cameras."""

    folder: Path
    cameras: list[Camera]

    def video(self, camera: str) -> Path:
        return self.folder / "videos" / f"{camera}.mp4"


def fetch_wheel(cache: Path) -> Path:
    """The pose2sim wheel in ``cache`` (``pip download`` from PyPI the first time; hash checked)."""
    path = cache / WHEEL
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(cache),
               "pose2sim==0.10.49"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not path.is_file():
            raise BadInput(
                f"Could not download pose2sim==0.10.49 from PyPI into {cache}: {done.stderr.strip()[-300:]}"
            )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise BadInput(f"{path}: sha256 {digest}, expected {WHEEL_SHA256}; delete it and run again.")
    return path


def extract(wheel: Path, demo: str, into: Path) -> Capture:
    """Unpack one demo's videos and calibration (and the licence) from the wheel."""
    prefix = f"Pose2Sim/Demo_{demo}/"
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(prefix + "videos/") or name == prefix + "calibration/Calib.qca.txt":
                z.extract(name, into)
        licence = next(n for n in z.namelist() if n.endswith("licenses/LICENSE"))
        (into / "LICENSE-Pose2Sim.txt").write_bytes(z.read(licence))
    folder = into / prefix
    qca = read_qualisys(folder / "calibration" / "Calib.qca.txt")
    return Capture(folder, [qca[c] for c in CAMERAS])


def detect_all(capture: Capture, cache: Path, max_people: int = 4) -> np.ndarray:
    """(V, T, P, 33, 3) MediaPipe multi-person 2D (pixels, confidence; NaN rows: no one) per view, cached."""
    cached = cache / f"detections_{capture.folder.name}.npy"
    if cached.is_file():
        return np.load(cached)
    from backend.config import DetectConfig
    from backend.detect.multi import MultiPoseDetector
    from backend.io.video import iter_frames, probe

    views = []
    for camera in CAMERAS:
        info = probe(capture.video(camera))
        out = np.full((info.frame_count, max_people, 33, 3), np.nan, np.float32)
        detector = MultiPoseDetector(DetectConfig(max_people=max_people))
        try:
            for frame in iter_frames(info):
                people = detector.detect(frame).body2d[:max_people]
                out[frame.index, : len(people)] = people
        finally:
            detector.close()
        views.append(out)
    stacked = np.stack(views)
    with atomic_path(cached, suffix=".npy") as tmp:
        np.save(tmp, stacked)
    return stacked


def people_tracks(cameras: list[Camera], detections: np.ndarray, n_people: int) -> list[np.ndarray]:
    """The ``n_people`` longest tracks' observations, each (V, T, 33, 3)."""
    frames = [associate(cameras, detections[:, t]) for t in range(detections.shape[1])]
    tracks = link(frames)[:n_people]
    log.info("tracks: %s frames seen by two views or more", [len(t) for t in tracks])
    return [track_observations(detections, t) for t in tracks]


def person_points(cameras: list[Camera], obs: np.ndarray) -> np.ndarray:
    """(T, 19, 3) triangulated world points (NaN where unknown) after one round of side repair."""
    points = triangulate(cameras, obs)
    obs, swaps = repair_sides(cameras, obs, points)
    points = triangulate(cameras, obs)
    log.info(
        "side swaps repaired: %d; median reprojection %s px",
        swaps,
        np.round(reprojection_px(cameras, obs, points), 1),
    )
    return points


def calibrate(single: Capture, cache: Path) -> tuple[list[Camera], np.ndarray]:
    """The cameras with principal points refined on the single-person capture (two rounds), and that
    person's observations (V, T, 33, 3)."""
    cameras = single.cameras
    (obs,) = people_tracks(cameras, detect_all(single, cache), 1)
    for _ in range(2):
        cameras = refine_principal_points(cameras, obs, person_points(cameras, obs))
    for cam in cameras:
        log.info(
            "%s: f %.1f px, principal point (%.1f, %.1f)", cam.name, cam.K[0, 0], cam.K[0, 2], cam.K[1, 2]
        )
    return cameras, obs


def check_against(folder: Path, cameras: list[Camera], obs: np.ndarray) -> None:
    """Log how far this builder's truth of the single-person capture (its observations ``obs``) is from a
    realbench's ``gt.npz``."""
    gt_path = folder / "gt.npz"
    if not gt_path.is_file():
        return
    world = fill_and_filter(person_points(cameras, obs), FPS)[:, : len(NAMES)]
    ok = np.isfinite(world).all(axis=(1, 2))
    with np.load(gt_path) as gt:
        for cam in cameras:
            if f"joints_{cam.name}" in gt.files:
                truth = gt[f"joints_{cam.name}"]
                ours = cam.to_camera(world[ok])
                pa = (
                    np.linalg.norm(metrics.procrustes_align(ours, truth[ok]) - truth[ok], axis=-1).mean()
                    * 1000
                )
                mpjpe = np.linalg.norm(ours - truth[ok], axis=-1).mean() * 1000
                log.info(
                    "check against %s, %s: MPJPE %.1f mm, PA-MPJPE %.1f mm", gt_path, cam.name, mpjpe, pa
                )


def view_arrays(camera: Camera, world: np.ndarray, obs_view: np.ndarray) -> dict[str, np.ndarray] | None:
    """One camera's truth of one person, or None where too little of it is known or seen there."""
    known = np.isfinite(world[:, : len(NAMES)]).all(axis=(1, 2))
    seen = np.isfinite(obs_view[:, list(SCORED), 0]).all(axis=1)
    if known.sum() < MIN_FRAMES or (seen & known).sum() < 0.5 * known.sum():
        return None
    return {"joints": camera.to_camera(world[:, : len(NAMES)]).astype(np.float32),
            "joints_ext": camera.to_camera(world).astype(np.float32),
            "K": camera.K, "dist": camera.dist}  # fmt: skip


def build(out: Path, cache: Path, check: Path | None = None, n_people: int = 2) -> list[str]:
    """Build the Demo_MultiPerson bench into ``out``; returns its views (``<camera>_<person>``)."""
    wheel = fetch_wheel(cache)
    single = extract(wheel, "SinglePerson", cache / "demos")
    multi = extract(wheel, "MultiPerson", cache / "demos")
    cameras, single_obs = calibrate(single, cache)
    if check is not None:
        check_against(check, cameras, single_obs)
    detections = detect_all(multi, cache)
    arrays: dict[str, np.ndarray] = {}
    views = []
    for p, obs in enumerate(people_tracks(cameras, detections, n_people)):
        world = fill_and_filter(person_points(cameras, obs), FPS)
        for v, cam in enumerate(cameras):
            got = view_arrays(cam, world, obs[v])
            if got is None:
                continue
            view = f"{cam.name}_p{p}"
            views.append(view)
            arrays |= {f"{key}_{view}": value for key, value in got.items()}
            arrays[f"video_{view}"] = np.array(f"{cam.name}.mp4")
            arrays[f"people_{view}"] = np.array(n_people)
            log.info(
                "%s: %d frames of known truth", view, int(np.isfinite(got["joints"]).all(axis=(1, 2)).sum())
            )
    out.mkdir(parents=True, exist_ok=True)
    for camera in CAMERAS:
        shutil.copyfile(multi.video(camera), out / f"{camera}.mp4")
    shutil.copyfile(cache / "demos" / "LICENSE-Pose2Sim.txt", out / "LICENSE-Pose2Sim.txt")
    with atomic_path(out / "gt.npz", suffix=".npz") as tmp:
        np.savez(tmp, names=np.array(NAMES), names_ext=np.array(NAMES_EXT), fps=np.array(FPS),
                 views=np.array(views), **arrays)  # fmt: skip
    return views
