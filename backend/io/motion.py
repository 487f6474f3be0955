"""The versioned motion file (``.motion.npz``): write atomically, load with validation.

Layout (DESIGN.md): ``meta`` is a JSON string; per person ``p`` arrays are prefixed ``p{id}/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import BadInput
from backend.io import motion_schema as schema
from backend.io.atomic import atomic_path
from backend.io.motion_validate import (
    PEOPLE_FORMAT,
    THUMBNAILS,
    check_thumbnails,
    read_motion_file,
    validate_motion,
)

FORMAT_NAME = schema.FORMAT_NAME
FORMAT_VERSION = schema.FORMAT_VERSION


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
    thumbnails: np.ndarray | None = None
    """(N, S, S, 3) uint8: a crop of each person listed in meta ``tracked`` (written as ``thumbnails``)."""

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
    with atomic_path(path, suffix=".npz") as tmp:
        write(tmp, motion, str(path))
    return path


def write(path: str | Path, motion: MotionFile, where: str | None = None) -> None:
    """Validate ``motion`` and write it to ``path`` as it is (the caller renames a temporary file;
    ``where`` names the final path in messages)."""
    where = where or str(path)
    motion.meta.setdefault("format", FORMAT_NAME)
    motion.meta.setdefault("version", FORMAT_VERSION)
    motion.meta["people"] = [p.person_id for p in motion.people]
    try:
        validate_motion(motion.meta, {p.person_id: p.arrays for p in motion.people}, where)
    except schema.MotionFileError as exc:
        raise BadInput(str(exc)) from exc
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(motion.meta, allow_nan=False))}
    if motion.thumbnails is not None:
        try:
            check_thumbnails(motion.thumbnails.shape, motion.thumbnails.dtype, motion.meta, where)
        except schema.MotionFileError as exc:
            raise BadInput(str(exc)) from exc
        arrays[THUMBNAILS] = motion.thumbnails
    for p in motion.people:
        for name, value in p.arrays.items():
            arrays[f"p{p.person_id}/{name}"] = np.asarray(value)
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load(path: str | Path) -> MotionFile:
    """Read and validate a motion file (``backend.io.motion_validate``: every array's type, shape and
    values, sizes checked before inflating); raise BadInput with one line naming the file and field."""
    try:
        meta, people = read_motion_file(path)
    except schema.MotionFileError as exc:
        raise BadInput(str(exc)) from exc
    return MotionFile(meta, [PersonMotion(int(pid), arrays) for pid, arrays in people.items()])


def write_people(path: str | Path, meta: dict[str, Any], thumbnails: np.ndarray, where: str | None = None) -> None:
    """Write a people file (``PEOPLE_FORMAT``: meta with ``tracked``, and their ``thumbnails``) to ``path``
    as it is (the caller renames a temporary file; ``where`` names the final path in messages)."""
    meta = {"format": PEOPLE_FORMAT, "version": 1, **meta}
    try:
        check_thumbnails(thumbnails.shape, thumbnails.dtype, meta, where or str(path))
    except schema.MotionFileError as exc:
        raise BadInput(str(exc)) from exc
    with open(path, "wb") as handle:
        np.savez_compressed(handle, meta=np.array(json.dumps(meta, allow_nan=False)), thumbnails=thumbnails)
