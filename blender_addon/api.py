"""Python API for scripts: estimate a clip, import a motion file, retarget it, export FBX or BVH.

Works in a Blender session (``blender -b -P script.py``, the Python console) and in a plain
Python with the ``bpy`` module (``import bpy``)::

    from blender_addon import api            # installed extension: from bl_ext.user_default.video2anim import api

    motion = api.estimate_clip("clip.mp4", "out/clip.motion.npz", preset="fast")
    armature = api.import_motion(motion, ground_plane=True)   # footage found next to the file
    api.retarget_motion(armature, bpy.data.objects["my_rig"], "auto")   # onto your own rig
    api.export_fbx(armature, "out/clip.fbx", preset="unity")

``estimate_clip`` blocks until the backend ends (it is for scripts; the panel's operator does not
block). The backend's Python comes from the ``python`` argument, else the add-on preferences when
the add-on is enabled, else the repository's ``.venv`` or the environment installed by the
preferences' button.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import bpy

from . import build_scene, bvh_export, foot_lock, preferences, retarget, scene_guard
from . import export as fbx_export
from . import motion_data as md
from .job import BackendJob, JobSnapshot
from .job_options import JobOptions

log = logging.getLogger(__name__)


class EstimateError(RuntimeError):
    """The backend failed or was cancelled; the message is the backend's (or says why it could not run)."""

    def __init__(self, message: str, snapshot: JobSnapshot | None = None) -> None:
        super().__init__(message)
        self.snapshot = snapshot


def estimate_clip(
    video: str | Path,
    out: str | Path,
    *,
    preset: str = "balanced",
    person: str | int | Sequence[int] = "auto",
    start: int = 0,
    end: int | None = None,
    device: str | None = None,
    preview: str | Path | None = None,
    focal_px: float | None = None,
    hands: bool = True,
    face: bool = True,
    body: str = "anny",
    model_path: str | Path | None = None,
    gender: str = "neutral",
    python: str | Path | None = None,
    backend_root: str | Path | None = None,
    timeout_s: float | None = None,
    on_progress: Callable[[JobSnapshot], None] | None = None,
) -> Path:
    """Run the backend on ``video`` and return the motion file it wrote (``out``, ``.motion.npz``).

    Args:
        video: the clip.
        out: the motion file to write; its log goes next to it (``<name>.log``).
        preset: ``fast``, ``balanced`` or ``accurate``.
        person: ``auto``, ``all``, a track id or a list of ids (the motion file's meta ``tracked`` lists
            everyone found, with a thumbnail of each in its ``thumbnails`` array).
        start, end: source frames, 0-based, ``end`` exclusive (None: to the end).
        device: ``auto``, ``cpu`` or ``cuda``; None takes the add-on preference (else ``auto``).
        preview: also write an MP4 preview here.
        focal_px: the camera's focal length in pixels (else a 60 degree field of view across the image's
            long side is assumed).
        hands, face: estimate fingers and face.
        body: ``anny`` (shipped) or ``smpl`` / ``smplh`` / ``smplx`` with ``model_path`` (the folder of
            your own model files) and ``gender``.
        python: the backend's Python; None finds it (see the module doc).
        backend_root: the folder holding the ``backend`` package; None uses the bundled one.
        timeout_s: cancel the run after this long.
        on_progress: called with a :class:`~blender_addon.job.JobSnapshot` about ten times a second.

    Raises:
        EstimateError: the backend could not run, failed (its message) or was cancelled.
    """
    prefs = preferences.get()
    root = None if backend_root is None else Path(backend_root)
    paths = preferences.backend_paths(prefs, str(python or ""), root)
    if paths.python is None:
        raise EstimateError(paths.problem)
    vposer = prefs.vposer_path if prefs is not None else ""
    options = JobOptions(
        video=Path(video),
        out=Path(out),
        preset=preset,
        person=person if isinstance(person, str) else (
            str(person) if isinstance(person, int) else ",".join(str(int(p)) for p in person)
        ),
        start=int(start),
        end=None if end is None else int(end),
        device=device or (prefs.device if prefs is not None else "auto"),
        preview=None if preview is None else Path(preview),
        vposer=Path(bpy.path.abspath(vposer)) if vposer else None,
        focal_px=focal_px,
        hands=hands,
        face=face,
        body=body,
        model_path=None if model_path is None else Path(model_path),
        gender=gender,
    )
    job = BackendJob(options, paths.python, paths.root)
    snap = job.start()
    if not snap.finished:
        snap = job.wait(timeout_s=timeout_s, on_update=on_progress)
    if snap.status != "done" or snap.result is None:
        raise EstimateError(snap.error or f"The estimate was {snap.status}.", snap)
    for warning in snap.warnings:
        log.warning("%s: %s", Path(video).name, warning)
    return snap.result


def import_motion(
    path: str | Path,
    person_id: int | None = None,
    collection_name: str | None = None,
    *,
    video_path: str | Path | None = None,
    movie_clip: bpy.types.MovieClip | None = None,
    ground_plane: bool = False,
) -> bpy.types.Object:
    """Import one person (the first by default) of a motion file; return the armature object.

    The armature, its skinned mesh, the camera (and the ground plane) go into a collection named
    after the clip (``collection_name``); importing again replaces them. The camera shows the
    footage as its background: ``movie_clip``, else ``video_path``, else the source video when it
    lies next to the motion file. Raises ``motion_data.MotionDataError`` for a file that is not a
    motion file.
    """
    return build_scene.build_person(
        path, None, collection_name, person_id,
        video_path=video_path, movie_clip=movie_clip, ground_plane=ground_plane,
    )  # fmt: skip


def import_people(
    path: str | Path,
    collection_name: str | None = None,
    *,
    people: Sequence[int] | None = None,
    video_path: str | Path | None = None,
    movie_clip: bpy.types.MovieClip | None = None,
    ground_plane: bool = False,
) -> list[bpy.types.Object]:
    """Import every person of a motion file (or the ids in ``people``); return their armatures.

    Each person's armature and mesh go into a collection of their own (``<clip>_person_<id>``) inside
    the clip's collection, which holds the one camera and ground plane they share (footage and ground
    as :func:`import_motion`). The whole file is validated before the scene is touched; if a person
    fails to build, the people already built by this call are removed again.
    """
    options = {"video_path": video_path, "movie_clip": movie_clip, "ground_plane": ground_plane}
    held = md.person_ids(path)
    wanted = held if people is None else [int(p) for p in people]
    missing = [p for p in wanted if p not in held]
    if missing or not wanted:
        raise md.MotionDataError(f"{path} holds the people {held}; {missing or 'none'} cannot be imported.")
    md.read_motion(path, held[0])  # validates every person's arrays, not only the first
    with scene_guard.unchanged_on_failure(bpy.context.scene):
        return [import_motion(path, pid, collection_name, **options) for pid in wanted]


def lock_feet(armature: bpy.types.Object) -> int:
    """Pin an imported armature's ankles on the frames its motion file marks as planted (IK baked to
    keys on the leg bones; see ``foot_lock``); returns the ankle-frames locked."""
    source = armature.get(build_scene.SOURCE)
    if not source:
        raise md.MotionDataError(f"{armature.name} was not imported from a motion file.")
    return foot_lock.lock_feet(armature, str(source), int(armature.get(build_scene.PERSON, 0)))


def retarget_motion(
    source: bpy.types.Object,
    target: bpy.types.Object,
    bone_map: str | Path | dict[str, str] = "auto",
    *,
    progress: Callable[[float], None] | None = None,
) -> retarget.RetargetResult:
    """Bake an imported armature's motion onto your own rig (a new action on ``target``; its earlier
    action is kept). ``bone_map``: ``auto`` (detected), ``rigify``, ``mixamo``, ``unreal``, a JSON file
    ``{"slot": "bone"}`` or a dict (slots: ``retarget_maps.SLOTS``). See ``retarget``."""
    return retarget.retarget(source, target, bone_map, progress=progress)


def export_fbx(
    armature: bpy.types.Object | Sequence[bpy.types.Object], path: str | Path, preset: str = "unity"
) -> Path:
    """Export armature(s) with their meshes and baked animation to FBX (preset ``unity`` or ``unreal``)."""
    return fbx_export.export_fbx(armature, path, preset)


def export_fbx_each(
    armatures: Sequence[bpy.types.Object], folder: str | Path, preset: str = "unity"
) -> list[Path]:
    """One FBX per armature (with its mesh and baked animation) in ``folder``, named after the armature
    (``demo_p1_armature.fbx``); ``export_fbx`` with a list puts them all in one file instead."""
    return [fbx_export.export_fbx(a, Path(folder) / f"{a.name}.fbx", preset) for a in armatures]


def export_bvh(armature: bpy.types.Object, path: str | Path) -> Path:
    """Export an armature's motion to BVH (armature space, Blender's axes, metres; see ``bvh_export``)."""
    return bvh_export.export_bvh(armature, path)
