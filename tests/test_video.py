"""Decoding: rotation metadata, real timestamps (variable frame rate), ranges, bad files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from backend.errors import BadInput
from backend.io.video import iter_frames, probe
from tests.conftest import ffmpeg_exe, run_ffmpeg, write_clip


def _ffmpeg_first_frame(path: Path, width: int, height: int) -> np.ndarray:
    """ffmpeg's own decode of frame 0, with its autorotation, as RGB."""
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def test_probe_and_stream(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=12, size=(160, 96), fps=25.0)
    info = probe(clip)
    assert (info.width, info.height, info.rotation) == (160, 96, 0)
    assert info.fps == pytest.approx(25.0)
    frames = list(iter_frames(info))
    assert [f.index for f in frames] == list(range(12))
    assert frames[3].time_s == pytest.approx(0.12)
    assert frames[0].rgb.shape == (96, 160, 3) and frames[0].rgb.dtype == np.uint8
    part = list(iter_frames(info, 4, 7))
    assert [f.index for f in part] == [4, 5, 6]
    assert part[0].time_s == pytest.approx(0.16)


def test_phone_rotation_metadata_is_applied(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=4)
    rotated = tmp_path / "rotated.mp4"
    run_ffmpeg("-display_rotation", "90", "-i", str(clip), "-c", "copy", str(rotated))
    info = probe(rotated)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (96, 160)  # portrait after rotation
    ours = next(iter_frames(info)).rgb
    reference = _ffmpeg_first_frame(rotated, 96, 160)
    assert np.abs(ours.astype(int) - reference.astype(int)).mean() < 6.0


def test_variable_frame_rate_timestamps(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", frames=12)
    vfr = tmp_path / "vfr.mp4"
    # First six frames 80 ms apart, then 40 ms apart.
    run_ffmpeg(
        "-i",
        str(clip),
        "-vf",
        "setpts='if(lt(N,6),N*2,12+(N-6))/(25*TB)'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "mpeg4",
        str(vfr),
    )
    times = np.array([f.time_s for f in iter_frames(probe(vfr))])
    steps = np.diff(times)
    assert np.allclose(steps[:5], 0.08, atol=0.005)
    assert np.allclose(steps[6:], 0.04, atol=0.005)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("text.mp4", b"this is not a video\n" * 10, "convert it"),
        ("empty.mp4", b"", "empty"),
    ],
)
def test_bad_files_raise_bad_input(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInput, match=expected):
        probe(path)


def test_missing_path_and_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(BadInput, match="not a file"):
        probe(tmp_path)
