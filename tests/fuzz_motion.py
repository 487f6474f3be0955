"""Generated malformed motion files: every one is invalid by construction (issue 10's fuzz suite).

Each mutation of the tiny valid file (``tests.motion_fixture``) breaks one rule of the schema:
a missing or mistyped entry, a wrong shape, a NaN, an index out of range, bad meta, bytes cut off or
corrupted inside an entry's compressed data (the zip's CRC catches every such change).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from backend.io import motion_schema as schema
from tests.motion_fixture import npz_entries

Entries = dict[str, np.ndarray]
_REQUIRED = [f"p0/{k}" for k in schema.PERSON_SPECS] + [
    "p0/anny_pose",
    "p0/phenotypes",
    "p0/world_from_camera",
]
_RIG = [f"p0/{schema.RIG_PREFIX}{k}" for k in schema.RIG_SPECS]
_INDEX = {"p0/rig/faces": 8, "p0/rig/face_uv": 3, "p0/rig/skin_indices": 3, "p0/rig/keypoint_vertices": 8}
_BAD_META: list[tuple[str, object]] = [
    ("format", "something.else"), ("format", None), ("version", 2), ("version", True), ("version", "1"),
    ("fps", 0), ("fps", -1.0), ("fps", "30"), ("fps", None), ("fps", 1e9), ("fps", [30]),
    ("frame_count", 0), ("frame_count", 5), ("frame_count", 6.5), ("frame_count", True), ("frame_count", 10**12),
    ("image_size", [64]), ("image_size", [0, 48]), ("image_size", "64x48"), ("image_size", [64.5, 48]),
    ("intrinsics", [[1, 0], [0, 1]]), ("intrinsics", "K"), ("intrinsics", [[0, 0, 32], [0, 60, 24], [0, 0, 1]]),
    ("intrinsics", [[60, 0, 32], [0, 60, 24], [0, 0, 0]]), ("people", []), ("people", [0, 0]), ("people", [-1]),
    ("people", "0"), ("people", [0, 1]), ("people", [1]), ("people", [None]), ("body_model", "anny"),
    ("body_model", {"name": 3}), ("body_model", {"name": "anny"}), ("body_model", {"name": "anny", "bone_labels": []}),
    ("body_model", {"name": "anny", "bone_labels": ["a", "a", "b"]}),
    ("body_model", {"name": "anny", "bone_labels": ["root", "spine", "x" * 80]}),
    ("body_model", {"name": "anny", "bone_labels": ["root", "spine"]}), ("rotation_applied_deg", 45),
    ("source_video", 7), ("keypoint_names", {"keypoints3d": ["a", "b", "c"]}), ("keypoint_names", []),
]  # fmt: skip


def _save(path: Path, entries: Entries) -> Path:
    np.savez_compressed(path, **entries)
    return path


def _meta(entries: Entries) -> dict:
    return json.loads(str(entries["meta"]))


def _drop(entries: Entries, rng: np.random.Generator) -> Entries:
    del entries[str(rng.choice(["meta"] + _REQUIRED + _RIG))]
    return entries


def _float_names(entries: Entries) -> list[str]:
    return [k for k in _REQUIRED + _RIG if k in entries and entries[k].dtype.kind == "f" and entries[k].size]


def _non_finite(entries: Entries, rng: np.random.Generator) -> Entries:
    name = str(rng.choice(_float_names(entries)))
    array = entries[name].astype(np.float64 if entries[name].dtype == np.float64 else np.float32)
    array.reshape(-1)[rng.integers(array.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e30])
    entries[name] = array
    return entries


def _retype(entries: Entries, rng: np.random.Generator) -> Entries:
    name = str(rng.choice([k for k in _REQUIRED + _RIG if k in entries and k != "p0/rig/meta"]))
    array = entries[name]
    kind = rng.integers(4)
    if kind == 0:
        entries[name] = array.astype(str) if array.dtype.kind != "U" else np.zeros(array.shape, np.float32)
    elif kind == 1:
        entries[name] = array.astype(object)  # a pickle: must be refused, never unpickled
    elif kind == 2:
        entries[name] = array.astype(np.complex64) if array.dtype.kind != "U" else array.astype("S")
    else:
        entries[name] = np.zeros(array.shape, [("a", "<f4"), ("b", "<i4")])
    return entries


def _reshape(entries: Entries, rng: np.random.Generator) -> Entries:
    name = str(rng.choice([k for k in _REQUIRED + _RIG if k in entries and k != "p0/rig/meta"]))
    shape = list(entries[name].shape)
    kind = rng.integers(3)
    if kind == 0 and shape:
        shape.pop(int(rng.integers(len(shape))))
    elif kind == 1:
        shape.insert(int(rng.integers(len(shape) + 1)), int(rng.integers(2, 4)))
    elif name == "p0/rig/uv":  # its row count is free: only face_uv's indices refer to it
        shape = [shape[0], 3]
    else:
        if not shape:
            shape = [2]
        axis = int(rng.integers(len(shape)))
        shape[axis] = shape[axis] + int(rng.choice([-1, 1, 2, 5])) if shape[axis] > 1 else shape[axis] + 1
    entries[name] = np.zeros(shape, entries[name].dtype)
    return entries


def _bad_index(entries: Entries, rng: np.random.Generator) -> Entries:
    name = str(rng.choice(list(_INDEX) + ["p0/rig/bone_parents", "p0/frame_index"]))
    array = entries[name].astype(np.int64).copy()
    flat = array.reshape(-1)
    at = int(rng.integers(flat.size))
    if name == "p0/rig/bone_parents":
        flat[:] = rng.choice([[0, 0, 1], [-1, 2, 1], [-1, -1, 1], [-1, 0, 3], [-1, 1, 1]])
    elif name == "p0/frame_index":
        flat[at] = rng.choice([-5, flat[max(at - 1, 0)] if at else flat[1], 10**9])
    else:
        flat[at] = rng.choice([-1, _INDEX[name], 10**6])
    entries[name] = array.astype(entries[name].dtype if name != "p0/frame_index" else np.int64)
    return entries


def _bad_values(entries: Entries, rng: np.random.Generator) -> Entries:
    kind = rng.integers(5)
    if kind == 0:
        entries["p0/contacts"] = entries["p0/contacts"] + float(rng.choice([1.5, -2.0]))
    elif kind == 1:
        entries["p0/world_from_camera"] = entries["p0/world_from_camera"] * np.array([1, 1, 1, 0.5])
    elif kind == 2:
        entries["p0/rig/rest_poses"] = entries["p0/rig/rest_poses"].copy() * 1.5
    elif kind == 3:
        entries["p0/rig/bone_labels"] = np.array(["root", "root", "head"])
    else:
        entries["p0/rig/skin_weights"] = -entries["p0/rig/skin_weights"]
    return entries


def _bad_meta(entries: Entries, rng: np.random.Generator) -> Entries:
    key, value = _BAD_META[int(rng.integers(len(_BAD_META)))]
    meta = _meta(entries)
    meta[key] = value
    entries["meta"] = np.array(json.dumps(meta))
    return entries


def _broken_meta(entries: Entries, rng: np.random.Generator) -> Entries:
    choices = [
        np.array("{not json"), np.array("[]"), np.array("42"), np.array("[" * 100_000 + "]" * 100_000),
        np.array('{"format": 1e999}'), np.zeros(3), np.array(["{}", "{}"]), np.array(json.dumps({"format": "x"})),
    ]  # fmt: skip
    entries["meta"] = choices[int(rng.integers(len(choices)))]
    return entries


def _bad_rig_meta(entries: Entries, rng: np.random.Generator) -> Entries:
    entries["p0/rig/meta"] = np.array(
        rng.choice(["{}", "nope", json.dumps({"format": schema.RIG_FORMAT, "version": 9})])
    )
    return entries


STRUCTURAL: list[Callable[[Entries, np.random.Generator], Entries]] = [
    _drop, _non_finite, _retype, _reshape, _bad_index, _bad_values, _bad_meta, _broken_meta, _bad_rig_meta,
]  # fmt: skip


def _truncate(path: Path, rng: np.random.Generator) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(rng.integers(0, len(data) - 1))])


def _corrupt(path: Path, rng: np.random.Generator) -> None:
    """Change bytes inside the compressed data of one entry that the reader uses."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        infos = [
            i
            for i in archive.infolist()
            if i.compress_size > 8 and i.filename[:-4] in ["meta"] + _REQUIRED + _RIG
        ]
    info = infos[int(rng.integers(len(infos)))]
    local = info.header_offset  # the local header's own name and extra lengths (zip64 extras differ)
    name_len, extra_len = (int.from_bytes(data[local + o : local + o + 2], "little") for o in (26, 28))
    start = local + 30 + name_len + extra_len
    body = info.compress_size - 4  # the last byte may hold only padding bits after the final block
    at = start + int(rng.integers(body))
    for offset in range(int(rng.integers(1, 5))):
        if at + offset < start + body:
            data[at + offset] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))


def malformed_files(folder: Path, count: int, seed: int = 0) -> Iterator[tuple[str, Path]]:
    """Yield (mutation name, path) for ``count`` malformed files written in ``folder``."""
    rng = np.random.default_rng(seed)
    for n in range(count):
        path = folder / f"fuzz_{n:04d}.motion.npz"
        choice = int(rng.integers(len(STRUCTURAL) + 2))
        if choice < len(STRUCTURAL):
            mutate = STRUCTURAL[choice]
            _save(path, mutate(npz_entries(), rng))
            yield mutate.__name__, path
        else:
            _save(path, npz_entries())
            damage = (_truncate, _corrupt)[choice - len(STRUCTURAL)]
            damage(path, rng)
            yield damage.__name__, path
