"""Value checks and the validating readers of motion and rig files (NumPy + standard library only).

Vendored byte for byte by the add-on, like ``motion_schema.py`` and ``bounded_npz.py``: the backend's
``backend.io.motion.load`` and the add-on's import read motion files through :func:`read_motion_file`.
Shapes and types are checked from the ``.npy`` headers (``motion_schema``) and the inflated size against
a budget before any array is read; then values (:func:`check_person_values`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .bounded_npz import FileFormatError, NpzReader
from .motion_schema import (
    LEGACY_RIG_FORMATS,
    MAX_FRAME_NUMBER,
    OPTIONAL_SPECS,
    PERSON_SPECS,
    RIG_FORMAT,
    RIG_OPTIONAL_SPECS,
    RIG_PREFIX,
    RIG_SPECS,
    RIG_VERSION,
    MotionFileError,
    check_format,
    check_meta,
    check_person_shapes,
    check_rig_shapes,
)

MAX_FILE_BYTES = 4 << 30
MAX_ARRAY_BYTES = 2 << 30
"""Budget for all arrays of a file once inflated (a 10-minute clip needs about 0.3 GB)."""
MAX_META_BYTES = 16 << 20


# ---------------------------------------------------------------------------------------- values
MAX_ABS_VALUE = 1e6
"""Largest magnitude of any float in a motion file (metres, pixels, seconds, radians...)."""
MAX_NAME_BYTES = 63
"""Blender truncates longer names, and the importer looks bones and shape keys up by name."""


def _fail(where: str, field: str, problem: str) -> MotionFileError:
    return MotionFileError(f"{where}: '{field}' {problem}.")


def _check_floats(arrays: dict[str, np.ndarray], where: str) -> None:
    for name, array in arrays.items():
        if array.dtype.kind == "f" and array.size:
            if not np.isfinite(array).all():
                raise _fail(where, name, "holds NaN or infinite values")
            if float(np.abs(array).max()) > MAX_ABS_VALUE:
                raise _fail(where, name, f"holds values beyond +-{MAX_ABS_VALUE:g}")


def _check_index(array: np.ndarray, low: int, high: int, where: str, name: str) -> None:
    """Every entry of ``array`` in ``low <= i < high``."""
    if array.size and (int(array.min()) < low or int(array.max()) >= high):
        raise _fail(where, name, f"holds indices outside {low}..{high - 1}")


def _check_names(names: Any, where: str, field: str) -> None:
    names = [str(n) for n in np.asarray(names).ravel()] if isinstance(names, np.ndarray) else names
    if len(set(names)) != len(names):
        raise _fail(where, field, "holds duplicate names")
    for name in names:
        if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise _fail(
                where, field, f"holds a name that is empty or over {MAX_NAME_BYTES} bytes ({name[:80]!r})"
            )


def _check_rigid(matrices: np.ndarray, where: str, name: str) -> None:
    """(..., 4, 4) rigid transforms: last row (0, 0, 0, 1), rotation orthonormal with determinant 1."""
    m = matrices.reshape(-1, 4, 4).astype(np.float64)
    r = m[:, :3, :3]
    ok = np.allclose(m[:, 3], [0.0, 0.0, 0.0, 1.0], atol=1e-6)
    ok = ok and np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-3) and (np.linalg.det(r) > 0).all()
    if not ok:
        raise _fail(where, name, "is not a rigid transform (rotation and translation)")


def check_person_values(pid: int, arrays: dict[str, np.ndarray], meta: dict, where: str) -> None:
    """Value checks of one person whose shapes passed :func:`check_person_shapes`."""
    where = f"{where}: person {pid}"
    _check_floats(arrays, where)
    frames = arrays["frame_index"].astype(np.int64)
    if frames.min() < 0 or frames.max() > MAX_FRAME_NUMBER or (np.diff(frames) <= 0).any():
        raise _fail(where, "frame_index", f"must increase, within 0..{MAX_FRAME_NUMBER}")
    contacts = arrays["contacts"]
    if contacts.size and (contacts.min() < 0 or contacts.max() > 1):
        raise _fail(where, "contacts", "holds probabilities outside 0..1")
    _check_rigid(arrays["world_from_camera"], where, "world_from_camera")
    _check_names(meta["body_model"]["bone_labels"], where, "meta body_model.bone_labels")
    rig = {k[len(RIG_PREFIX) :]: v for k, v in arrays.items() if k.startswith(RIG_PREFIX)}
    if rig:
        check_rig_values(rig, f"{where} rig")
        if [str(s) for s in rig["bone_labels"]] != list(meta["body_model"]["bone_labels"]):
            raise _fail(where, "rig/bone_labels", "differs from meta body_model.bone_labels")


def check_rig_values(rig: dict[str, np.ndarray], where: str) -> None:
    """Value checks of a rig whose shapes passed :func:`check_rig_shapes`."""
    try:
        check_format(json.loads(str(rig["meta"])), where, RIG_FORMAT, RIG_VERSION, LEGACY_RIG_FORMATS)
    except (ValueError, RecursionError) as exc:
        raise _fail(where, "meta", "is not valid JSON") from exc
    _check_floats({k: v for k, v in rig.items() if k != "meta"}, where)
    n_bones, n_verts = len(rig["bone_labels"]), len(rig["rest_vertices"])
    parents = rig["bone_parents"].astype(np.int64)
    if parents[0] != -1 or (
        n_bones > 1 and ((parents[1:] < 0) | (parents[1:] >= np.arange(1, n_bones))).any()
    ):
        raise _fail(where, "bone_parents", "must be -1 for the root and name an earlier bone for every other")
    _check_index(rig["faces"], 0, n_verts, where, "faces")
    _check_index(rig["face_uv"], 0, len(rig["uv"]), where, "face_uv")
    _check_index(rig["skin_indices"], 0, n_bones, where, "skin_indices")
    _check_index(rig["keypoint_vertices"], 0, n_verts, where, "keypoint_vertices")
    if (rig["skin_weights"] < 0).any() or (rig["bone_lengths"] <= 0).any():
        raise _fail(where, "skin_weights or bone_lengths", "holds negative weights or non-positive lengths")
    _check_rigid(rig["rest_poses"], where, "rest_poses")
    for labels in ("bone_labels", "phenotype_labels", "shape_key_labels", "expression_labels"):
        if labels in rig:
            _check_names(rig[labels], where, labels)


# ---------------------------------------------------------------------------------------- files
def validate_motion(meta: Any, people: dict[int, dict[str, np.ndarray]], where: str) -> None:
    """All checks on a motion file held in memory (``people``: id -> arrays, rig under ``rig/``)."""
    fixed = check_meta(meta, where)
    if sorted(people) != sorted(meta["people"]):
        raise MotionFileError(
            f"{where}: meta 'people' lists {meta['people']} but the arrays hold {sorted(people)}."
        )
    for pid, arrays in people.items():
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        check_person_shapes(pid, {k: (v.shape, v.dtype) for k, v in arrays.items()}, meta, fixed, where)
        check_person_values(pid, arrays, meta, where)


def _known(name: str) -> bool:
    if name.startswith(RIG_PREFIX):
        name = name[len(RIG_PREFIX) :]
        return name in RIG_SPECS or name in RIG_OPTIONAL_SPECS
    return name in PERSON_SPECS or name in OPTIONAL_SPECS or name == "world_from_camera"


def _read_meta(npz: NpzReader, where: str) -> Any:
    header = npz.headers.get("meta")
    if header is None:
        raise MotionFileError(f"{where} is not a motion file: it has no 'meta' entry.")
    if header.shape != () or header.dtype.kind != "U" or header.nbytes > MAX_META_BYTES:
        raise MotionFileError(f"{where}: 'meta' must be one JSON string of at most {MAX_META_BYTES} bytes.")
    try:
        return json.loads(str(npz.read("meta")))
    except (ValueError, RecursionError) as exc:
        raise MotionFileError(f"{where}: its 'meta' entry is not valid JSON.") from exc


def read_motion_file(
    path: str | Path, meta_only: bool = False
) -> tuple[dict, dict[int, dict[str, np.ndarray]]]:
    """Read and validate a motion file: (meta, person id -> arrays). Entries this version does not
    know are neither read nor returned. Raises :class:`MotionFileError` for anything wrong."""
    where = str(path)
    try:
        with NpzReader(path, MAX_FILE_BYTES) as npz:
            meta = _read_meta(npz, where)
            fixed = check_meta(meta, where)
            if meta_only:
                return meta, {}
            groups: dict[int, dict[str, str]] = {}
            for pid in meta["people"]:
                prefix = f"p{pid}/"
                groups[pid] = {
                    n[len(prefix) :]: n
                    for n in npz.headers
                    if n.startswith(prefix) and _known(n[len(prefix) :])
                }
                shapes = {k: (npz.headers[n].shape, npz.headers[n].dtype) for k, n in groups[pid].items()}
                check_person_shapes(pid, shapes, meta, fixed, where)
            total = sum(npz.headers[n].nbytes for names in groups.values() for n in names.values())
            if total > MAX_ARRAY_BYTES:
                raise MotionFileError(
                    f"{where}: its arrays would take {total} bytes, more than {MAX_ARRAY_BYTES}."
                )
            people = {pid: {k: npz.read(n) for k, n in names.items()} for pid, names in groups.items()}
    except MotionFileError:
        raise
    except FileFormatError as exc:
        raise MotionFileError(str(exc)) from exc
    for pid, arrays in people.items():
        check_person_values(pid, arrays, meta, where)
    return meta, people


THUMBNAILS = "thumbnails"
"""Optional entry: (N, S, S, 3) uint8 RGB crops of the N people listed in meta ``tracked``, in order."""


def check_thumbnails(shape: tuple[int, ...], dtype: np.dtype, meta: dict, where: str) -> None:
    """The ``thumbnails`` entry's shape and type against meta ``tracked``."""
    listed = meta.get("tracked")
    count = len(listed) if isinstance(listed, list) else -1
    if len(shape) != 4 or shape[0] != count or shape[3] != 3 or not 8 <= shape[1] == shape[2] <= 512 or dtype != np.uint8:
        raise MotionFileError(
            f"{where}: 'thumbnails' must be (N, S, S, 3) uint8 with one crop per person of meta 'tracked' "
            f"({count}); it is {shape} {dtype}."
        )


PEOPLE_FORMAT = "video2anim.people"
"""The people file (``python -m backend people``): ``meta`` (format, version, source video, image size,
frame range, ``tracked``) and ``thumbnails``; no motion."""


def read_thumbnails(path: str | Path) -> tuple[list[dict], np.ndarray | None]:
    """Meta ``tracked`` (every person found, see ``backend.detect.people_list``) and their thumbnails from
    a motion file or a people file; ``([], None)`` for a motion file written before they existed."""
    where = str(path)
    try:
        with NpzReader(path, MAX_FILE_BYTES) as npz:
            meta = _read_meta(npz, where)
            people_file = isinstance(meta, dict) and meta.get("format") == PEOPLE_FORMAT
            if not people_file:
                check_meta(meta, where)
            listed = meta.get("tracked", [])
            if not isinstance(listed, list) or not all(isinstance(p, dict) and type(p.get("id")) is int for p in listed):
                raise MotionFileError(f"{where}: meta 'tracked' must be a list of people with integer ids.")
            header = npz.headers.get(THUMBNAILS)
            if header is None:
                if people_file:
                    raise MotionFileError(f"{where}: a people file must hold 'thumbnails'.")
                return listed, None
            check_thumbnails(header.shape, header.dtype, meta, where)
            return listed, npz.read(THUMBNAILS)
    except MotionFileError:
        raise
    except FileFormatError as exc:
        raise MotionFileError(str(exc)) from exc


def read_rig_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read and validate a rig file written by ``backend.body`` rig export."""
    where = str(path)
    try:
        with NpzReader(path, MAX_FILE_BYTES) as npz:
            shapes = {n: (h.shape, h.dtype) for n, h in npz.headers.items()}
            check_rig_shapes(shapes, where, {})
            rig = {n: npz.read(n) for n in shapes if n in RIG_SPECS or n in RIG_OPTIONAL_SPECS}
    except MotionFileError:
        raise
    except FileFormatError as exc:
        raise MotionFileError(str(exc)) from exc
    check_rig_values(rig, where)
    return rig
