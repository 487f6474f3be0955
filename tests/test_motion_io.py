"""Motion file: atomic write, validated load, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.errors import BadInput
from backend.io import motion


def _motion(t: int = 5) -> motion.MotionFile:
    arrays = {
        "frame_index": np.arange(t),
        "valid": np.ones(t, bool),
        "time_s": np.arange(t) / 30.0,
        "keypoints2d": np.zeros((t, 33, 3), np.float32),
        "keypoints3d": np.zeros((t, 23, 3), np.float32),
        "global_orient": np.zeros((t, 3), np.float32),
        "body_pose": np.zeros((t, 63), np.float32),
        "left_hand_pose": np.zeros((t, 45), np.float32),
        "right_hand_pose": np.zeros((t, 45), np.float32),
        "jaw_pose": np.zeros((t, 3), np.float32),
        "transl": np.zeros((t, 3), np.float32),
        "contacts": np.zeros((t, 4), np.float32),
    }
    meta = {
        "body_model": {"name": "anny"}, "fps": 30.0, "frame_count": t, "image_size": [64, 48],
        "intrinsics": np.eye(3).tolist(), "people": [0],
    }  # fmt: skip
    return motion.MotionFile(meta, [motion.PersonMotion(0, arrays)])


def test_round_trip(tmp_path: Path) -> None:
    path = motion.save(tmp_path / "a.motion.npz", _motion())
    loaded = motion.load(path)
    assert loaded.meta["format"] == motion.FORMAT_NAME and loaded.meta["version"] == motion.FORMAT_VERSION
    assert loaded.person(0)["body_pose"].shape == (5, 63)
    assert [p.name for p in tmp_path.iterdir()] == ["a.motion.npz"]  # no temp file left behind


def test_invalid_motion_is_not_written(tmp_path: Path) -> None:
    bad = _motion()
    bad.people[0].arrays["transl"] = np.full((5, 3), np.nan, np.float32)
    with pytest.raises(BadInput, match="NaN"):
        motion.save(tmp_path / "b.motion.npz", bad)
    assert list(tmp_path.iterdir()) == []


def test_rejects_unknown_version_and_garbage(tmp_path: Path) -> None:
    path = motion.save(tmp_path / "a.motion.npz", _motion())
    with np.load(path) as data:
        contents = {k: data[k] for k in data.files}
    meta = json.loads(str(contents["meta"]))
    meta["version"] = 99
    contents["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "future.motion.npz", **contents)
    with pytest.raises(BadInput, match="version 99"):
        motion.load(tmp_path / "future.motion.npz")
    (tmp_path / "garbage.motion.npz").write_bytes(b"garbage")
    with pytest.raises(BadInput, match="not a motion file"):
        motion.load(tmp_path / "garbage.motion.npz")
    del contents["p0/body_pose"]
    contents["meta"] = np.array(json.dumps({**meta, "version": motion.FORMAT_VERSION}))
    np.savez(tmp_path / "partial.motion.npz", **contents)
    with pytest.raises(BadInput, match="body_pose"):
        motion.load(tmp_path / "partial.motion.npz")
