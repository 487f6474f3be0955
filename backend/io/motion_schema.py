"""The motion file's schema and its strict, bounded reader (NumPy + standard library only).

The Blender add-on vendors this file and ``bounded_npz.py`` byte for byte (``blender_addon/``), so the
backend's ``backend.io.motion.load`` and the add-on's import validate through the same code.

Checks, in this order, each failure one :class:`MotionFileError` line naming the file and the field:

1. ``meta``: a JSON object of bounded size; format and version; fps, frame count, image size,
   intrinsics, people ids, the body model's bone labels.
2. Every array's dtype and shape, from its ``.npy`` header, against :data:`PERSON_SPECS` and
   :data:`RIG_SPECS` (symbolic sizes: ``T`` frames, ``B`` bones, ``V`` vertices...), and the sum of
   their sizes against a memory budget, before any array is inflated.
3. Values: floats finite; frame numbers increasing; bone parents, faces, skin and keypoint indices
   in range; contact probabilities in [0, 1]; transforms rigid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bounded_npz import FileFormatError

FORMAT_NAME = "video2anim.motion"
FORMAT_VERSION = 1
RIG_FORMAT = "video2anim.rig"
RIG_VERSION = 1
LEGACY_RIG_FORMATS = ("video2anim.anny_rig",)
"""Earlier name of the rig format (before the SMPL family used it too); read as the same format."""
RIG_PREFIX = "rig/"
"""Rig arrays stored inside a motion file live under ``p{id}/rig/``."""

MAX_FRAME_NUMBER = 1_000_000
"""Blender keys frame ``frame_index + 1``; Blender's last frame is 1,048,574."""
MAX_PEOPLE = 1000
_LIMITS = {"T": MAX_FRAME_NUMBER, "B": 1024, "V": 2_000_000, "F": 4_000_000, "FC": 4, "UV": 8_000_000,
           "P": 256, "S": 1024, "E": 1024, "K": 1024, "N": 100_000, "W": 64, "HW": 1024}  # fmt: skip
_MINIMA = {"FC": 3, "V": 1, "F": 1, "UV": 1, "B": 1}

Dim = int | str
"""A fixed size, or a symbol whose size is bound by ``meta`` or at its first use in a file."""


class MotionFileError(FileFormatError):
    """A motion or rig file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Spec:
    """Shape and type of one array: ``kinds`` among numpy's b (bool), i/u (int), f (float), U (text)."""

    dims: tuple[Dim, ...]
    kinds: str = "f"


_F = Spec  # float arrays are the common case
PERSON_SPECS: dict[str, Spec] = {
    "frame_index": Spec(("T",), "iu"),
    "valid": Spec(("T",), "b"),
    "time_s": _F(("T",)),
    "keypoints2d": _F(("T", "K2", 3)),
    "keypoints3d": _F(("T", "K3", 3)),
    "global_orient": _F(("T", 3)),
    "body_pose": _F(("T", 63)),
    "left_hand_pose": _F(("T", 45)),
    "right_hand_pose": _F(("T", 45)),
    "jaw_pose": _F(("T", 3)),
    "transl": _F(("T", 3)),
    "contacts": _F(("T", 4)),
}
"""Arrays every person has."""
OPTIONAL_SPECS: dict[str, Spec] = {
    "anny_pose": _F(("T", "B", 3)),
    "phenotypes": _F(("S",)),
    "rig_pose": _F(("T", "B", 3)),
    "betas": _F(("S",)),
    "native_pose": _F(("T", "J", 3)),
    "expression": _F(("T", "E")),
    "keypoints3d_world": _F(("T", "K3", 3)),
    "keypoints3d_detector": _F(("T", "K2", 3)),
    "keypoints3d_lifted": _F(("T", "K3", 3)),
    "keypoints3d_hands": _F(("T", 2, 21, 3)),
    "keypoints3d_face": _F(("T", "KF", 3)),
    "keypoints2d_left_hand": _F(("T", 21, 3)),
    "keypoints2d_right_hand": _F(("T", 21, 3)),
    "keypoints2d_face": _F(("T", "KF2", 3)),
    "bbox": _F(("T", 4)),
    "silhouette": Spec(("T", "HW", "HW2"), "u"),
}
"""Arrays checked when present. Anny writes ``anny_pose`` and ``phenotypes``; the SMPL family
``rig_pose`` and ``betas`` (one pair is required, see :func:`_body_arrays`)."""
RIG_SPECS: dict[str, Spec] = {
    "meta": Spec((), "U"),
    "bone_labels": Spec(("B",), "U"),
    "bone_parents": Spec(("B",), "iu"),
    "rest_poses": _F(("B", 4, 4)),
    "bone_lengths": _F(("B",)),
    "reference_orientations": _F(("B", 3, 3)),
    "rest_vertices": _F(("V", 3)),
    "faces": Spec(("F", "FC"), "iu"),
    "uv": _F(("UV", 2)),
    "face_uv": Spec(("F", "FC"), "iu"),
    "skin_indices": Spec(("V", "W"), "iu"),
    "skin_weights": _F(("V", "W")),
    "phenotype_labels": Spec(("P",), "U"),
    "phenotypes": _F(("S",)),
    "phenotype_targets": _F(("P", 2, "V", 3)),
    "keypoint_names": Spec(("K",), "U"),
    "keypoint_vertices": Spec(("K", "N"), "iu"),
    "keypoint_weights": _F(("K", "N")),
}
RIG_OPTIONAL_SPECS: dict[str, Spec] = {
    "shape_key_labels": Spec(("SK",), "U"),
    "shape_key_targets": _F(("SK", "V", 3)),
    "expression_labels": Spec(("E",), "U"),
    "expression_targets": _F(("E", "V", 3)),
}


# ---------------------------------------------------------------------------------------- meta
def _number(meta: dict, key: str, where: str, low: float, high: float, integer: bool = False) -> float:
    value = meta.get(key)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise MotionFileError(
            f"{where}: meta '{key}' must be a {'whole ' if integer else ''}number, not {value!r}."
        )
    if not low <= value <= high:
        raise MotionFileError(f"{where}: meta '{key}' is {value}, outside {low:g}..{high:g}.")
    return value


def _labels(value: Any, where: str, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise MotionFileError(f"{where}: {field} must be a list of names.")
    if len(set(value)) != len(value):
        raise MotionFileError(f"{where}: {field} holds duplicate names.")
    return value


def check_format(
    meta: Any, where: str, name: str = FORMAT_NAME, version: int = FORMAT_VERSION, aliases: tuple[str, ...] = ()
) -> dict:
    """``meta`` must be a JSON object of format ``name`` (or one of ``aliases``) at ``version``; returns it."""
    if not isinstance(meta, dict):
        raise MotionFileError(f"{where}: 'meta' is not a JSON object.")
    if meta.get("format") != name and meta.get("format") not in aliases:
        raise MotionFileError(f"{where} is not a {name} file (format: {meta.get('format')!r}).")
    found = meta.get("version")
    if isinstance(found, bool) or found != version:
        raise MotionFileError(
            f"{where} is {name} version {found!r}; this software reads version {version}. "
            "Re-run the estimate with this version."
        )
    return meta


def check_meta(meta: Any, where: str) -> dict[str, int]:
    """Validate a motion file's meta; return the sizes it fixes (``T`` frames, ``B`` bones, keypoint counts)."""
    meta = check_format(meta, where)
    _number(meta, "fps", where, 1e-3, 1000.0)
    frames = int(_number(meta, "frame_count", where, 1, MAX_FRAME_NUMBER, integer=True))
    size = meta.get("image_size")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v, 1, 100_000) for v in size)):
        raise MotionFileError(f"{where}: meta 'image_size' must be [width, height] in pixels, not {size!r}.")
    k = np.asarray(_float_matrix(meta.get("intrinsics"), (3, 3), where, "intrinsics"))
    if not (k[0, 0] > 0 and k[1, 1] > 0 and np.allclose(k[2], [0, 0, 1])):
        raise MotionFileError(f"{where}: meta 'intrinsics' is not a camera matrix (positive focal lengths).")
    people = meta.get("people")
    if not isinstance(people, list) or not people or len(people) > MAX_PEOPLE:
        raise MotionFileError(f"{where}: meta 'people' must list the person ids; the file holds no person.")
    if not all(_is_int(p, 0, 10**9) for p in people) or len(set(people)) != len(people):
        raise MotionFileError(f"{where}: meta 'people' must hold distinct non-negative ids, not {people!r}.")
    body = meta.get("body_model")
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise MotionFileError(f"{where}: meta 'body_model' must be an object with the model's name.")
    bones = _labels(body.get("bone_labels"), where, "meta body_model.bone_labels")
    if not 1 <= len(bones) <= _LIMITS["B"]:
        raise MotionFileError(f"{where}: meta body_model.bone_labels holds {len(bones)} bones.")
    if meta.get("rotation_applied_deg", 0) not in (0, 90, 180, 270):
        raise MotionFileError(f"{where}: meta 'rotation_applied_deg' must be 0, 90, 180 or 270.")
    if not isinstance(meta.get("source_video", ""), str):
        raise MotionFileError(f"{where}: meta 'source_video' must be a file name.")
    dims = {"T": frames, "B": len(bones)}
    names = meta.get("keypoint_names", {})
    if not isinstance(names, dict):
        raise MotionFileError(f"{where}: meta 'keypoint_names' must be an object.")
    for key, dim in (("keypoints2d", "K2"), ("keypoints3d", "K3")):
        if key in names:
            dims[dim] = len(_labels(names[key], where, f"meta keypoint_names.{key}"))
    return dims


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _float_matrix(value: Any, shape: tuple[int, ...], where: str, field: str) -> list:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MotionFileError(f"{where}: meta '{field}' must be a {shape} matrix of numbers.") from exc
    if array.shape != shape or not np.isfinite(array).all():
        raise MotionFileError(f"{where}: meta '{field}' must be a {shape} matrix of finite numbers.")
    return array.tolist()


# ---------------------------------------------------------------------------------------- shapes
class _Dims:
    """Symbolic sizes of one person: fixed by meta, or bound at their first use."""

    def __init__(self, fixed: dict[str, int], where: str) -> None:
        self.sizes = dict(fixed)
        self.where = where

    def check(self, field: str, shape: tuple[int, ...], dtype: np.dtype, spec: Spec) -> None:
        if dtype.kind not in spec.kinds:
            raise MotionFileError(
                f"{self.where}: '{field}' has type {dtype.str}; expected kind {spec.kinds!r}."
            )
        if len(shape) != len(spec.dims):
            raise MotionFileError(f"{self.where}: '{field}' has shape {shape}; expected {spec.dims}.")
        for got, want in zip(shape, spec.dims, strict=True):
            if isinstance(want, int):
                ok = got == want
            elif want in self.sizes:
                ok = got == self.sizes[want]
            else:
                base = want.rstrip("0123456789")
                ok = _MINIMA.get(base, 0) <= got <= _LIMITS.get(base, 100_000)
                self.sizes[want] = got
            if not ok:
                raise MotionFileError(f"{self.where}: '{field}' has shape {shape}; expected {spec.dims} "
                                      f"with {self._bound(spec.dims)}.")  # fmt: skip

    def _bound(self, dims: tuple[Dim, ...]) -> str:
        known = [f"{d}={self.sizes[d]}" for d in dims if isinstance(d, str) and d in self.sizes]
        return ", ".join(known) or "sizes in range"


def _body_arrays(meta: dict) -> tuple[str, str]:
    """(pose array, shape array) Blender animates: Anny's or the SMPL family's; both must be there."""
    anny = meta["body_model"]["name"] == "anny"
    return ("anny_pose", "phenotypes") if anny else ("rig_pose", "betas")


def check_person_shapes(
    pid: int,
    shapes: dict[str, tuple[tuple[int, ...], np.dtype]],
    meta: dict,
    fixed: dict[str, int],
    where: str,
) -> None:
    """Check one person's array shapes and types (``shapes``: name -> (shape, dtype), rig under ``rig/``)."""
    dims = _Dims(fixed, f"{where}: person {pid}")
    required = dict(PERSON_SPECS)
    pose, shape = _body_arrays(meta)
    required[pose], required[shape] = OPTIONAL_SPECS[pose], OPTIONAL_SPECS[shape]
    for name, spec in required.items():
        if name not in shapes:
            raise MotionFileError(f"{where}: person {pid} lacks the array '{name}'.")
        dims.check(name, *shapes[name], spec)
    for name, spec in OPTIONAL_SPECS.items():
        if name in shapes and name not in required:
            dims.check(name, *shapes[name], spec)
    wfc_shape, wfc_dtype = shapes.get("world_from_camera", ((), np.dtype(np.int8)))
    if wfc_dtype.kind != "f" or wfc_shape not in ((4, 4), (fixed["T"], 4, 4)):
        raise MotionFileError(
            f"{where}: person {pid} 'world_from_camera' must be (4, 4) or (T, 4, 4) floats."
        )
    rig = {k[len(RIG_PREFIX) :]: v for k, v in shapes.items() if k.startswith(RIG_PREFIX)}
    if rig:
        check_rig_shapes(rig, f"{where}: person {pid} rig", {"B": fixed["B"], "S": dims.sizes["S"]})


def check_rig_shapes(
    shapes: dict[str, tuple[tuple[int, ...], np.dtype]], where: str, fixed: dict[str, int]
) -> None:
    """Check a rig's array shapes and types (a rig file's, or one stored in a motion file)."""
    dims = _Dims(fixed, where)
    for name, spec in RIG_SPECS.items():
        if name not in shapes:
            raise MotionFileError(f"{where} lacks the array '{name}'.")
        dims.check(name, *shapes[name], spec)
    for name, spec in RIG_OPTIONAL_SPECS.items():
        if name in shapes:
            dims.check(name, *shapes[name], spec)
