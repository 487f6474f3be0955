"""Operators: estimate and find people (modal, non-blocking), cancel, import a motion file, export FBX.

Each one checks its input, calls a bpy-free or bpy-thin function (``job``, ``api``, ``export``) and
reports. ``video2anim.estimate`` polls a :class:`~blender_addon.job.BackendJob` from a timer when
invoked from the UI; run with ``execute`` (scripts, background mode) it blocks until the job ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import bpy
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import api, people, preferences
from . import motion_data as md
from .job import BackendJob, JobSnapshot
from .properties import FBX_PRESETS, Video2AnimSettings

log = logging.getLogger(__name__)
_TICK_S = 0.25


def _settings(context: bpy.types.Context) -> Video2AnimSettings:
    return context.scene.video2anim


def _import(
    op: bpy.types.Operator,
    motion: Path,
    collection: str | None,
    *,
    video_path: Path | None = None,
    movie_clip: bpy.types.MovieClip | None = None,
    ground_plane: bool = True,
) -> set[str]:
    """Import every person of a motion file (footage behind the camera) and report; FINISHED or CANCELLED."""
    try:
        armatures = api.import_people(
            motion, collection, video_path=video_path, movie_clip=movie_clip, ground_plane=ground_plane
        )
    except (md.MotionDataError, OSError) as exc:  # the file was checked whole before the scene was touched
        op.report({"ERROR"}, f"Cannot import {motion.name}: {exc}")
        return {"CANCELLED"}
    except Exception as exc:  # noqa: BLE001 - an operator reports; the scene was restored (scene_guard)
        log.exception("importing %s failed", motion)
        op.report({"ERROR"}, f"Cannot import {motion.name}: {type(exc).__name__}: {exc} (the scene is unchanged)")
        return {"CANCELLED"}
    for obj in bpy.context.view_layer.objects:
        obj.select_set(False)
    for armature in armatures:
        armature.select_set(True)
    bpy.context.view_layer.objects.active = armatures[0]
    op.report({"INFO"}, f"Imported {len(armatures)} person(s) from {motion.name}")
    return {"FINISHED"}


class _BackendRun:
    """A backend run from the panel's settings, modal (non-blocking) with a window, blocking without;
    ``_command`` names the backend command, ``_finish`` takes the finished job."""

    bl_options = {"REGISTER"}
    _command = "estimate"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and not _settings(context).running

    def _start(self, context: bpy.types.Context) -> BackendJob | None:
        settings = _settings(context)
        prefs = preferences.get(context)
        if prefs is None:
            options, problem = settings.job_options("auto", command=self._command)
        else:
            options, problem = settings.job_options(
                prefs.device, prefs.vposer_path, prefs.body_model, prefs.smpl_folder, prefs.smpl_gender,
                command=self._command,
            )  # fmt: skip
        paths = preferences.backend_paths(prefs)
        problem = problem or paths.problem
        if options is None or paths.python is None:
            settings.status, settings.message = "FAILED", problem
            self.report({"ERROR"}, problem)
            return None
        job = BackendJob(options, paths.python, paths.root)
        settings.cancel_requested = False
        if self._command == "estimate":
            settings.motion_path = ""
        snap = job.start()
        settings.show(snap)
        if snap.finished:
            self.report({"ERROR"}, snap.error)
            return None
        self._video, self._collection = settings.video()
        self._clip = settings.clip.name if settings.source == "CLIP" and settings.clip else ""
        self._ground = settings.ground_plane
        self._scene = context.scene.name
        return job

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Blocking run (scripts and background mode)."""
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        return self._finish(context, job.wait(on_update=_settings(context).show))

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if context.window is None:
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        self._timer = context.window_manager.event_timer_add(_TICK_S, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type != "TIMER":  # any timer tick will do: polling is cheap
            return {"PASS_THROUGH"}
        settings = self._job_settings(context)
        if settings.cancel_requested:
            settings.cancel_requested = False
            self._job.cancel()
        snap = self._job.poll()
        settings.show(snap)
        if context.workspace is not None:
            context.workspace.status_text_set(f"Video2Anim: {snap.summary()}")
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not snap.finished:
            return {"RUNNING_MODAL"}
        self._stop_ui(context)
        return self._finish(context, snap)

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the modal (file load, quit): stop the backend too."""
        self._job.cancel()
        self._stop_ui(context)
        settings = self._job_settings(context)
        settings.show(self._job.snapshot)
        settings.status = "CANCELLED"  # nobody follows the job any more

    def _job_settings(self, context: bpy.types.Context) -> Video2AnimSettings:
        """The settings of the scene the job was started from (the user may switch scenes)."""
        scene = bpy.data.scenes.get(self._scene) or context.scene
        return scene.video2anim

    def _stop_ui(self, context: bpy.types.Context) -> None:
        context.window_manager.event_timer_remove(self._timer)
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def _finish(self, context: bpy.types.Context, snap: JobSnapshot) -> set[str]:
        """What the finished job leads to (each operator defines it: import the motion, list the people)."""
        raise NotImplementedError(f"{type(self).__name__} must define _finish")


class VIDEO2ANIM_OT_estimate(_BackendRun, bpy.types.Operator):
    """Estimate the motion of the person in the video and import it as an animated body"""

    bl_idname = "video2anim.estimate"
    bl_label = "Estimate Motion"

    def _finish(self, context: bpy.types.Context, snap: JobSnapshot) -> set[str]:
        self._job_settings(context).show(snap)
        if snap.status == "cancelled":
            self.report({"WARNING"}, "Cancelled: no motion was imported.")
            return {"CANCELLED"}
        if snap.status != "done" or snap.result is None:
            self.report({"ERROR"}, snap.error or "The backend failed.")
            return {"CANCELLED"}
        for warning in snap.warnings:
            self.report({"WARNING"}, warning)
        return _import(
            self, snap.result, self._collection, video_path=self._video,
            movie_clip=bpy.data.movieclips.get(self._clip) if self._clip else None, ground_plane=self._ground,
        )  # fmt: skip


class VIDEO2ANIM_OT_find_people(_BackendRun, bpy.types.Operator):
    """List everyone in the clip with a thumbnail (detection only, no fit), to tick whom to fit"""

    bl_idname = "video2anim.find_people"
    bl_label = "Find People"
    _command = "people"

    def _finish(self, context: bpy.types.Context, snap: JobSnapshot) -> set[str]:
        settings = self._job_settings(context)
        settings.show(snap)
        if snap.status != "done" or snap.result is None:
            self.report({"WARNING"} if snap.status == "cancelled" else {"ERROR"}, snap.error or "Cancelled.")
            return {"CANCELLED"}
        try:
            count = people.load_people(settings, snap.result, settings.people_key())
        except md.MotionDataError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        settings.person = "chosen"
        self.report({"INFO"}, f"Found {count} person(s): tick whom to fit, then Estimate Motion.")
        return {"FINISHED"}


class VIDEO2ANIM_OT_cancel(bpy.types.Operator):
    """Stop the running estimate (the backend stops within about a second)"""

    bl_idname = "video2anim.cancel"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and _settings(context).status == "RUNNING"

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = _settings(context)
        settings.cancel_requested = True
        settings.status = "CANCELLING"
        return {"FINISHED"}


class VIDEO2ANIM_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import a motion file written by the backend (e.g. run headless) as an animated body"""

    bl_idname = "video2anim.import_motion"
    bl_label = "Import Motion File"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: bpy.props.StringProperty(default="*.motion.npz;*.npz", options={"HIDDEN"})
    ground_plane: bpy.props.BoolProperty(
        name="Ground Plane", description="Add a plane at z = 0 under the subject", default=True
    )
    video_path: bpy.props.StringProperty(
        name="Footage",
        description="Video for the camera's background (empty: the source video found next to the motion file)",
        subtype="FILE_PATH",
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        path = Path(self.filepath)
        if not path.is_file():
            self.report({"ERROR"}, f"{path} does not exist.")
            return {"CANCELLED"}
        video = Path(bpy.path.abspath(self.video_path)) if self.video_path else None
        if video is not None and not video.is_file():
            self.report({"ERROR"}, f"The footage {video} does not exist.")
            return {"CANCELLED"}
        return _import(self, path, None, video_path=video, ground_plane=self.ground_plane)


def active_armature(context: bpy.types.Context) -> bpy.types.Object | None:
    """The active armature, or the armature of the active mesh."""
    obj = context.active_object
    if obj is not None and obj.type == "MESH" and obj.parent is not None:
        obj = obj.parent
    return obj if obj is not None and obj.type == "ARMATURE" else None


class _OnArmature:
    """Mixin of the operators that act on the active armature (or the active body's armature): one
    poll, one check, one error path (the API call's errors become a report, never a traceback)."""

    missing = "Select an armature (or its body) to export."
    failed = "Export"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_armature(context) is not None

    def run(self, context: bpy.types.Context, call: Callable[[bpy.types.Object], str]) -> set[str]:
        """Report ``call(armature)``'s message, or why it could not run."""
        armature = active_armature(context)
        if armature is None:
            self.report({"ERROR"}, self.missing)  # type: ignore[attr-defined]
            return {"CANCELLED"}
        try:
            message = call(armature)
        except (md.MotionDataError, ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, f"{self.failed} failed: {exc}")  # type: ignore[attr-defined]
            return {"CANCELLED"}
        self.report({"INFO"}, message)  # type: ignore[attr-defined]
        return {"FINISHED"}


class VIDEO2ANIM_OT_export_fbx(_OnArmature, bpy.types.Operator, ExportHelper):
    """Export the active armature and its body with baked animation to FBX for a game engine"""

    bl_idname = "video2anim.export_fbx"
    bl_label = "Export FBX"
    bl_options = {"REGISTER"}
    failed = "FBX export"

    filename_ext = ".fbx"
    filter_glob: bpy.props.StringProperty(default="*.fbx", options={"HIDDEN"})
    preset: bpy.props.EnumProperty(name="Preset", items=FBX_PRESETS, default="unity")

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.run(
            context, lambda a: f"Exported {api.export_fbx(a, self.filepath, self.preset).name} ({self.preset})"
        )


class VIDEO2ANIM_OT_export_bvh(_OnArmature, bpy.types.Operator, ExportHelper):
    """Export the active armature's motion to BVH (Blender's axes, Z up, metres)"""

    bl_idname = "video2anim.export_bvh"
    bl_label = "Export BVH"
    bl_options = {"REGISTER"}
    failed = "BVH export"

    filename_ext = ".bvh"
    filter_glob: bpy.props.StringProperty(default="*.bvh", options={"HIDDEN"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.run(context, lambda a: f"Exported {api.export_bvh(a, self.filepath).name}")


class VIDEO2ANIM_OT_lock_feet(_OnArmature, bpy.types.Operator):
    """Pin the feet of the active imported body where its motion file says they are planted (IK, baked)"""

    bl_idname = "video2anim.lock_feet"
    bl_label = "Lock Feet"
    bl_options = {"REGISTER", "UNDO"}
    missing = "Select an imported armature (or its body)."
    failed = "Foot lock"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        armature = active_armature(context)
        return armature is not None and bool(armature.get("video2anim_source"))

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.run(context, lambda a: f"Locked {api.lock_feet(a)} foot-frames on {a.name}")


CLASSES = (
    VIDEO2ANIM_OT_estimate,
    VIDEO2ANIM_OT_find_people,
    VIDEO2ANIM_OT_cancel,
    VIDEO2ANIM_OT_import_motion,
    VIDEO2ANIM_OT_export_fbx,
    VIDEO2ANIM_OT_export_bvh,
    VIDEO2ANIM_OT_lock_feet,
)
register, unregister = bpy.utils.register_classes_factory(CLASSES)
