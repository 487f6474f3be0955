"""Shared fixtures: generated clips and one Anny body model per session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "demo.mp4"


def write_clip(path: Path, frames: int = 12, size: tuple[int, int] = (160, 96), fps: float = 25.0) -> Path:
    """A small MP4 (mp4v) of a moving bright square on grey; no person in it."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((h, w, 3), 90, np.uint8)
        x = 5 + 4 * i
        img[10:30, x : x + 20] = (40, 200, 250)
        writer.write(img)
    writer.release()
    return path


def ffmpeg_exe() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", *args], check=True)


def recorded_arrays(track, fit, body) -> dict[str, np.ndarray]:  # noqa: ANN001 - SubjectTrack, FitResult, BodyModel
    """A person's motion-file arrays as the pipeline's write stage records them (no lifter output:
    zeros), the rig included under ``rig/``."""
    from backend.lift.base import LiftResult
    from backend.pipeline.record import person_arrays

    t, k = fit.keypoints3d.shape[:2]
    return person_arrays(track, fit, LiftResult(np.zeros((t, k, 3), np.float32), np.zeros((t, k), np.float32), "none"), body)


@pytest.fixture(scope="session")
def anny_body():
    from backend.body.anny_body import AnnyBody

    return AnnyBody()
