"""Read what the Blender import needs from a motion file and a rig file (numpy only, no bpy, no torch).

The backend writes both (``backend/io/motion.py``, the rig export); the add-on cannot import the
backend (torch), so it vendors the backend's torch-free validating reader byte for byte
(``motion_validate``, ``motion_schema``, ``bounded_npz``): a file is checked whole (types, shapes, sizes
before inflating, values) before the importer touches the scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .motion_schema import RIG_PREFIX
from .motion_schema import MotionFileError as MotionDataError
from .motion_validate import read_motion_file, read_rig_file

__all__ = ["MotionDataError", "PersonClip", "AnnyRig", "read_motion", "read_rig", "embedded_rig", "person_ids"]


@dataclass(frozen=True)
class PersonClip:
    """One person's motion, as the importer uses it (T frames, B rig bones: Anny's or the SMPL family's joints)."""

    person_id: int
    frame_index: np.ndarray
    """(T,) source video frame numbers."""
    fps: float
    image_size: tuple[int, int]
    """(width, height) in pixels."""
    intrinsics: np.ndarray
    """(3, 3) pixel camera matrix."""
    world_from_camera: np.ndarray
    """(4, 4) or (T, 4, 4)."""
    rig_pose: np.ndarray
    """(T, B, 3) local-ref delta rotations, axis-angle (the file's ``anny_pose``, or ``rig_pose`` for the
    SMPL family)."""
    transl: np.ndarray
    """(T, 3) root delta translation (camera frame)."""
    shape: np.ndarray
    """(P,) fitted shape: Anny's ``phenotypes`` or the SMPL family's ``betas``."""
    bone_labels: tuple[str, ...]
    source_video: str = ""
    """The video's file name as the backend saw it (``meta.source_video``); "" when unknown."""
    rotation_deg: int = 0
    """Rotation the backend applied to the decoded frames (the video's rotation metadata)."""
    expression: np.ndarray | None = None
    """(T, E) SMPL-X expression coefficients (keys the rig's ``Exp000``... shape keys); None otherwise."""


@dataclass(frozen=True)
class AnnyRig:
    """The rig file's arrays (see ``backend/export_rig.py`` for shapes and frames)."""

    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def bone_labels(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.arrays["bone_labels"])

    @property
    def phenotype_labels(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.arrays["phenotype_labels"])

    def labels(self, key: str) -> tuple[str, ...]:
        """Names in a label array of the rig (empty when the rig has none, as Anny's for ``expression_labels``)."""
        return tuple(str(s) for s in self.arrays[key]) if key in self.arrays else ()


def person_ids(path: str | Path) -> list[int]:
    """The ids of the people in a motion file, in file order (checks the format and meta)."""
    meta, _ = read_motion_file(path, meta_only=True)
    return [int(p) for p in meta["people"]]


def read_motion(path: str | Path, person_id: int | None = None) -> tuple[PersonClip, dict[str, np.ndarray]]:
    """One person of a motion file (the first if ``person_id`` is None) and all their raw arrays.

    The whole file is validated first; raises MotionDataError naming the file and the field.
    """
    path = Path(path)
    meta, people = read_motion_file(path)
    pid = int(meta["people"][0]) if person_id is None else int(person_id)
    if pid not in people:
        raise MotionDataError(f"{path} has no person {pid}; it holds {list(people)}.")
    raw = people[pid]
    pose_key = "rig_pose" if "rig_pose" in raw else "anny_pose"
    shape_key = "betas" if "betas" in raw else "phenotypes"
    width, height = (int(v) for v in meta["image_size"])
    clip = PersonClip(
        person_id=pid,
        frame_index=raw["frame_index"].astype(np.int64),
        fps=float(meta["fps"]),
        image_size=(width, height),
        intrinsics=np.asarray(meta["intrinsics"], np.float64),
        world_from_camera=raw["world_from_camera"].astype(np.float64),
        rig_pose=raw[pose_key].astype(np.float64),
        transl=raw["transl"].astype(np.float64),
        shape=raw[shape_key].astype(np.float64),
        bone_labels=tuple(meta["body_model"]["bone_labels"]),
        source_video=str(meta.get("source_video") or ""),
        rotation_deg=int(meta.get("rotation_applied_deg") or 0),
        expression=raw["expression"].astype(np.float64) if "expression" in raw else None,
    )
    return clip, raw


def find_source_video(motion_path: str | Path, source_video: str) -> Path | None:
    """The clip a motion file was estimated from, if it lies next to the motion file.

    Looks for ``source_video`` (a file name) in the motion file's folder, then in its parent
    (the panel writes motion files to ``<video folder>/video2anim/`` by default).
    """
    if not source_video:
        return None
    folder = Path(motion_path).resolve().parent
    for candidate in (folder / Path(source_video).name, folder.parent / Path(source_video).name):
        if candidate.is_file():
            return candidate
    return None


def read_rig(path: str | Path) -> AnnyRig:
    """The rig from a rig file written by the backend's rig export (validated whole)."""
    return AnnyRig(read_rig_file(path))


def embedded_rig(raw: dict[str, np.ndarray], path: str | Path) -> AnnyRig:
    """The rig stored inside a motion file, from a person's raw arrays (see :func:`read_motion`)."""
    arrays = {k[len(RIG_PREFIX) :]: v for k, v in raw.items() if k.startswith(RIG_PREFIX)}
    if not arrays:
        raise MotionDataError(
            f"{path} holds no rig for this person: pass the rig file written by the backend "
            "(backend.body.anny_rig.export_anny_rig)."
        )
    return AnnyRig(arrays)


def check_match(clip: PersonClip, rig: AnnyRig, tolerance: float = 1e-4) -> None:
    """Raise MotionDataError unless the rig was made for this clip's body (bones and shape)."""
    if clip.bone_labels and tuple(clip.bone_labels) != rig.bone_labels:
        raise MotionDataError(
            "The rig's bones differ from the motion file's: they come from different models."
        )
    if clip.rig_pose.shape[1] != len(rig.bone_labels):
        raise MotionDataError(
            f"The motion's pose has {clip.rig_pose.shape[1]} bones but the rig {len(rig.bone_labels)}."
        )
    shape = np.asarray(rig["phenotypes"], np.float64)
    if shape.shape != clip.shape.shape or np.abs(shape - clip.shape).max() > tolerance:
        raise MotionDataError(
            "The rig was exported for another body shape than this person's fitted shape: "
            "export it again for this motion file."
        )
    n_expr = len(rig.labels("expression_labels"))
    if clip.expression is not None and n_expr and clip.expression.shape[1] != n_expr:
        raise MotionDataError(
            f"The motion has {clip.expression.shape[1]} expression coefficients but the rig {n_expr}."
        )
