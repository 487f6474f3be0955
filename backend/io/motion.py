"""The versioned motion file (``.motion.npz``): write atomically, load with validation.

Layout (DESIGN.md): ``meta`` is a JSON string; per person ``p`` arrays are prefixed ``p{id}/``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import BadInput
from backend.io.atomic import atomic_path

FORMAT_NAME = "video2anim.motion"
FORMAT_VERSION = 1

# Required per-person arrays: name -> (trailing shape, with None for "any"), leading dim is T.
_REQUIRED: dict[str, tuple[int | None, ...]] = {
    "frame_index": (),
    "valid": (),
    "time_s": (),
    "keypoints2d": (None, 3),
    "keypoints3d": (None, 3),
    "global_orient": (3,),
    "body_pose": (63,),
    "left_hand_pose": (45,),
    "right_hand_pose": (45,),
    "jaw_pose": (3,),
    "transl": (3,),
    "contacts": (4,),
}
# Optional per-frame arrays, checked when present (the SMPL family writes them).
_OPTIONAL: dict[str, tuple[int | None, ...]] = {
    "expression": (None,),
    "keypoints3d_hands": (2, 21, 3),
    "keypoints3d_face": (None, 3),
    "native_pose": (None, 3),
    "rig_pose": (None, 3),
}
_META_KEYS = ("format", "version", "body_model", "fps", "frame_count", "image_size", "intrinsics", "people")


@dataclass
class PersonMotion:
    """One person's arrays, keyed without the ``p{id}/`` prefix (see DESIGN.md)."""

    person_id: int
    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def frame_count(self) -> int:
        return int(self.arrays["frame_index"].shape[0])


@dataclass
class MotionFile:
    meta: dict[str, Any]
    people: list[PersonMotion] = field(default_factory=list)

    def person(self, person_id: int | None = None) -> PersonMotion:
        """The person with this id, or the first one."""
        if person_id is None:
            return self.people[0]
        for p in self.people:
            if p.person_id == person_id:
                return p
        raise KeyError(f"no person {person_id}; the file holds {[p.person_id for p in self.people]}")


def save(path: str | Path, motion: MotionFile) -> Path:
    """Validate and write ``motion`` to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    motion.meta.setdefault("format", FORMAT_NAME)
    motion.meta.setdefault("version", FORMAT_VERSION)
    motion.meta["people"] = [p.person_id for p in motion.people]
    _validate(motion, str(path))
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(motion.meta, allow_nan=False))}
    for p in motion.people:
        for name, value in p.arrays.items():
            arrays[f"p{p.person_id}/{name}"] = np.asarray(value)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return path


def load(path: str | Path) -> MotionFile:
    """Read and validate a motion file; raise BadInput with a clear message if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"Motion file {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInput(f"{path} is not a motion file (cannot be read as .npz: {exc}).") from exc
    if "meta" not in contents:
        raise BadInput(f"{path} is not a motion file: it has no 'meta' entry.")
    try:
        meta = json.loads(str(contents.pop("meta")))
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: its 'meta' entry is not valid JSON.") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise BadInput(f"{path} is not a {FORMAT_NAME} file (format: {meta.get('format')!r}).")
    if meta.get("version") != FORMAT_VERSION:
        raise BadInput(
            f"{path} is motion file version {meta.get('version')!r}; this software reads version "
            f"{FORMAT_VERSION}. Re-run the estimate with this version."
        )
    people: list[PersonMotion] = []
    for pid in meta.get("people", []):
        prefix = f"p{pid}/"
        arrays = {k[len(prefix) :]: v for k, v in contents.items() if k.startswith(prefix)}
        people.append(PersonMotion(int(pid), arrays))
    motion = MotionFile(meta, people)
    _validate(motion, str(path))
    return motion


def _validate(motion: MotionFile, where: str) -> None:
    missing = [k for k in _META_KEYS if k not in motion.meta]
    if missing:
        raise BadInput(f"{where}: motion file meta lacks {missing}.")
    if not motion.people:
        raise BadInput(f"{where}: motion file holds no person.")
    for p in motion.people:
        t = None
        checks = {**_REQUIRED, **{k: v for k, v in _OPTIONAL.items() if k in p.arrays}}
        for name, trailing in checks.items():
            if name not in p.arrays:
                raise BadInput(f"{where}: person {p.person_id} lacks the array '{name}'.")
            arr = np.asarray(p.arrays[name])
            if t is None:
                t = arr.shape[0] if arr.ndim else -1
            ok = arr.ndim == 1 + len(trailing) and arr.shape[0] == t
            ok = ok and all(
                want is None or got == want for got, want in zip(arr.shape[1:], trailing, strict=False)
            )
            if not ok:
                raise BadInput(f"{where}: person {p.person_id} array '{name}' has shape {arr.shape}.")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise BadInput(f"{where}: person {p.person_id} array '{name}' holds NaN or infinite values.")
        names = motion.meta.get("keypoint_names", {}).get("keypoints3d")
        if names is not None and len(names) != p.arrays["keypoints3d"].shape[1]:
            raise BadInput(f"{where}: keypoints3d names do not match the array.")
