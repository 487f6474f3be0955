"""Motion file: atomic write, strict and bounded validated load, one clear line per problem."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backend.errors import BadInput
from backend.io import motion
from tests.motion_fixture import npz_entries, tiny_meta, tiny_person, write_tiny_motion


def _motion(t: int = 5) -> motion.MotionFile:
    return motion.MotionFile(tiny_meta(t), [motion.PersonMotion(0, tiny_person(t))])


def _save_entries(path: Path, entries: dict[str, np.ndarray]) -> Path:
    np.savez_compressed(path, **entries)
    return path


def test_round_trip(tmp_path: Path) -> None:
    path = motion.save(tmp_path / "a.motion.npz", _motion())
    loaded = motion.load(path)
    assert loaded.meta["format"] == motion.FORMAT_NAME and loaded.meta["version"] == motion.FORMAT_VERSION
    assert loaded.person(0)["body_pose"].shape == (5, 63)
    assert loaded.person(0)["rig/faces"].shape == (12, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["a.motion.npz"]  # no temp file left behind


def test_invalid_motion_is_not_written(tmp_path: Path) -> None:
    bad = _motion()
    bad.people[0].arrays["transl"] = np.full((5, 3), np.nan, np.float32)
    with pytest.raises(BadInput, match="transl.*NaN"):
        motion.save(tmp_path / "b.motion.npz", bad)
    assert list(tmp_path.iterdir()) == []


def test_rejects_unknown_version_and_garbage(tmp_path: Path) -> None:
    entries = npz_entries()
    meta = json.loads(str(entries["meta"]))
    _save_entries(tmp_path / "future.motion.npz", entries | {"meta": np.array(json.dumps({**meta, "version": 99}))})
    with pytest.raises(BadInput, match="version 99"):
        motion.load(tmp_path / "future.motion.npz")
    (tmp_path / "garbage.motion.npz").write_bytes(b"garbage")
    with pytest.raises(BadInput, match="cannot be read as .npz"):
        motion.load(tmp_path / "garbage.motion.npz")
    del entries["p0/body_pose"]
    _save_entries(tmp_path / "partial.motion.npz", entries)
    with pytest.raises(BadInput, match="lacks the array 'body_pose'"):
        motion.load(tmp_path / "partial.motion.npz")


def _with(path: Path, **changes: object) -> Path:
    """A copy of the tiny file with entries replaced (None deletes) and meta keys changed (``meta__x``)."""
    entries = npz_entries()
    meta = json.loads(str(entries["meta"]))
    for key, value in changes.items():
        if key.startswith("meta__"):
            meta[key[len("meta__") :]] = value
        elif value is None:
            del entries[key.replace("__", "/")]
        else:
            entries[key.replace("__", "/")] = value  # type: ignore[assignment]
    if "meta" not in changes:
        entries["meta"] = np.array(json.dumps(meta))
    return _save_entries(path, entries)


# Issue 10, defect 6: each of these let a non-BadInput error out, or was accepted.
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"meta": np.array("[1, 2]")}, "'meta' is not a JSON object"),
        ({"meta__people": [{"id": 0}]}, "meta 'people'"),
        ({"meta__people": ["0"]}, "meta 'people'"),
        ({"meta__frame_count": 0}, "frame_count"),
        ({"meta__fps": -30.0}, "fps"),
        ({"meta__fps": 0}, "fps"),
        ({"meta__fps": "30"}, "fps"),
        ({"p0__frame_index": np.array([str(i) for i in range(6)])}, "frame_index.*type"),
        ({"p0__anny_pose": None}, "lacks the array 'anny_pose'"),
        ({"p0__anny_pose": np.full((6, 3, 3), np.nan, np.float32)}, "anny_pose.*NaN"),
        ({"p0__anny_pose": np.zeros((6, 4, 3), np.float32)}, "anny_pose.*shape"),
        ({"p0__anny_pose": np.zeros((6, 3), np.float32)}, "anny_pose.*shape"),
        ({"p0__rig__rest_vertices": np.full((8, 3), np.nan, np.float32)}, "rest_vertices.*NaN"),
        ({"p0__rig__bone_parents": np.array([-1, 5, 1], np.int32)}, "bone_parents"),
        ({"p0__rig__bone_parents": np.array([-1, 2, 1], np.int32)}, "bone_parents"),
        ({"p0__rig__skin_indices": np.full((8, 2), 7, np.int16)}, "skin_indices.*outside"),
        ({"p0__rig__faces": np.full((12, 3), 99, np.int32)}, "faces.*outside"),
        ({"p0__world_from_camera": np.eye(4) * 2}, "world_from_camera.*rigid"),
        ({"p0__contacts": np.full((6, 4), 3.0, np.float32)}, "contacts"),
    ],
)
def test_strict_validation_names_the_field(tmp_path: Path, changes: dict, expected: str) -> None:
    path = _with(tmp_path / "bad.motion.npz", **changes)
    with pytest.raises(BadInput, match=expected) as info:
        motion.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_corrupt_entry_is_bad_input(tmp_path: Path) -> None:
    path = write_tiny_motion(tmp_path / "ok.motion.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("p0/body_pose.npy")
    local = info.header_offset
    name_len, extra_len = (int.from_bytes(data[local + o : local + o + 2], "little") for o in (26, 28))
    start = local + 30 + name_len + extra_len + 40  # inside the deflate stream
    data[start : start + 200] = bytes(200)
    (tmp_path / "corrupt.motion.npz").write_bytes(bytes(data))
    with pytest.raises(BadInput, match="body_pose"):
        motion.load(tmp_path / "corrupt.motion.npz")


def test_small_file_that_inflates_to_gigabytes_is_refused_before_inflating(tmp_path: Path) -> None:
    """An entry of zeros that inflates 1000-fold: its header is checked before any data is inflated."""
    import tracemalloc

    path = write_tiny_motion(tmp_path / "ok.motion.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (6, 10**7)})
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("p0/keypoints3d_lifted.npy", "w", force_zip64=True) as handle:
            handle.write(header.getvalue())
            for _ in range(6 * 4 * 10**7 // (1 << 24) + 1):
                handle.write(bytes(min(1 << 24, 6 * 4 * 10**7 - handle._file_size + len(header.getvalue()))))
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(BadInput, match="keypoints3d_lifted.*shape"):
            motion.load(path)
        assert tracemalloc.get_traced_memory()[1] < 32 << 20
    finally:
        tracemalloc.stop()


def test_total_size_is_checked_before_inflating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import backend.io.motion_validate as validate

    monkeypatch.setattr(validate, "MAX_ARRAY_BYTES", 4096)
    with pytest.raises(BadInput, match="would take .* bytes"):
        motion.load(write_tiny_motion(tmp_path / "a.motion.npz"))


def test_unknown_entries_are_ignored_not_inflated(tmp_path: Path) -> None:
    path = _with(tmp_path / "extra.motion.npz", p0__something_new=np.zeros((2, 2)))
    assert "something_new" not in motion.load(path).person(0).arrays
