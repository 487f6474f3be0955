"""How long the Blender import of a one-minute clip takes (target: at most 5 s for 1800 frames).

Synthesises a motion file with the backend's own layout: Anny posed by smooth random canonical
rotations (a few sinusoids per joint, up to about 30 degrees, arms down, a slow walk-like drift of
the pelvis), its rig embedded as the pipeline does. Then imports it into a fresh scene with the
add-on's API three times and prints the median.

Usage: .venv/bin/python bench/import_speed.py [--frames 1800] [--fps 30] [--runs 3] [--keep FILE]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import roma
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402

from blender_addon import api  # noqa: E402

log = logging.getLogger("import_speed")
K = np.array([[1500.0, 0.0, 960.0], [0.0, 1500.0, 540.0], [0.0, 0.0, 1.0]])
PHENOTYPES = np.array([0.4, 0.5, 0.6, 0.5, 0.6, 0.5], np.float32)
CHUNK = 200


def smooth_poses(frames: int, fps: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Canonical (global_orient (T, 3, 3), body_pose (T, 21, 3), transl (T, 3)), smooth in time."""
    rng = np.random.default_rng(seed)
    time_s = np.arange(frames) / fps

    def wave(shape: tuple[int, ...], amplitude: float) -> np.ndarray:
        out = np.zeros((frames, *shape))
        for _ in range(3):  # three sinusoids, 0.1-1.2 Hz, random phases
            freq = rng.uniform(0.1, 1.2, shape)
            phase = rng.uniform(0, 2 * np.pi, shape)
            out += amplitude / 3 * np.sin(2 * np.pi * freq * time_s.reshape(-1, *[1] * len(shape)) + phase)
        return out

    pose = wave((21, 3), 0.5)
    pose[:, 15, 2] -= 1.1  # arms down from the T-pose
    pose[:, 16, 2] += 1.1
    upright = roma.rotvec_to_rotmat(torch.tensor([np.pi, 0.0, 0.0], dtype=torch.float64))
    orient = roma.rotvec_to_rotmat(torch.as_tensor(wave((3,), 0.3))) @ upright
    transl = np.array([0.0, 0.0, 5.0]) + wave((3,), 0.8) * np.array([1.0, 0.1, 1.0])
    return orient.float(), torch.as_tensor(pose, dtype=torch.float32), torch.as_tensor(transl).float()


def synthesise(path: Path, frames: int, fps: float) -> Path:
    """Write a ``frames``-long motion file (rig embedded) to ``path``."""
    from backend.body.anny_body import AnnyBody
    from backend.body.model import CanonicalPose
    from backend.detect.types import SubjectTrack
    from backend.fit.optimize import FitResult
    from backend.geometry.skeleton import KEYPOINT_NAMES
    from backend.io import motion as motion_io
    from backend.lift.base import LiftResult
    from backend.pipeline.record import person_arrays

    body = AnnyBody()
    orient, pose, transl = smooth_poses(frames, fps)
    rest = body.rest_state(torch.as_tensor(PHENOTYPES))
    kp, native = [], []
    with torch.no_grad():
        for a in range(0, frames, CHUNK):
            part = slice(a, a + CHUNK)
            out = body.forward(CanonicalPose(orient[part], roma.rotvec_to_rotmat(pose[part]), transl[part]), rest)
            kp.append(out.keypoints.numpy())
            native.append(body.native_pose_rotvec(out.deltas))
    keypoints = np.concatenate(kp)
    projected = keypoints @ K.T
    fit = FitResult(
        global_orient=roma.rotmat_to_rotvec(orient).numpy(), body_pose=pose.numpy(), transl=transl.numpy(),
        phenotypes=PHENOTYPES, keypoints3d=keypoints, projected=projected[..., :2] / projected[..., 2:],
        native_pose=np.concatenate(native),
    )  # fmt: skip
    zeros = np.zeros
    track = SubjectTrack(
        track_id=0, frame_index=np.arange(frames), time_s=np.arange(frames) / fps, valid=np.ones(frames, bool),
        body2d=zeros((frames, 33, 3)), body_world=zeros((frames, 33, 3)), left_hand2d=zeros((frames, 21, 3)),
        right_hand2d=zeros((frames, 21, 3)), face2d=zeros((frames, 468, 3)), bbox=zeros((frames, 4)),
        silhouette=zeros((frames, 64, 64), np.uint8),
    )  # fmt: skip
    lift = LiftResult(np.zeros_like(keypoints, np.float32), np.zeros(keypoints.shape[:2], np.float32), "none")
    arrays = person_arrays(track, fit, lift, body)
    meta = {
        "body_model": {"name": "anny", "bone_labels": body.bone_labels,
                       "phenotype_labels": body.phenotype_labels},
        "fps": fps, "frame_count": frames, "image_size": [1920, 1080], "intrinsics": K.tolist(),
        "keypoint_names": {"keypoints3d": list(KEYPOINT_NAMES)}, "source_video": "",
    }  # fmt: skip
    return motion_io.save(path, motion_io.MotionFile(meta, [motion_io.PersonMotion(0, arrays)]))


def time_import(path: Path, runs: int) -> list[float]:
    """Seconds per import into a fresh, empty scene."""
    times = []
    for _ in range(runs):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        clock = time.perf_counter()
        api.import_motion(path, ground_plane=True)
        times.append(time.perf_counter() - clock)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="also keep the synthetic motion file here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "minute.motion.npz"
        clock = time.perf_counter()
        synthesise(path, args.frames, args.fps)
        log.info("synthesised %s (%d frames) in %.1f s", path, args.frames, time.perf_counter() - clock)
        times = time_import(path, args.runs)
    median = statistics.median(times)
    print(f"import of {args.frames} frames ({args.frames / args.fps:.0f} s at {args.fps:g} fps): "
          f"median {median:.2f} s over {args.runs} runs ({', '.join(f'{t:.2f}' for t in times)}); "
          f"target at most 5 s: {'met' if median <= 5.0 else 'MISSED'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
