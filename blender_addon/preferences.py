"""Add-on preferences: the backend's Python (found automatically or installed by a button), body
model, SMPL files, VPoser checkpoint and device.

Also the *Install Backend* operator: it creates a virtual environment and pip-installs the bundled
backend's dependencies in a subprocess, polled from a timer so that Blender stays responsive.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import bpy

from . import backend_env
from .installer import InstallJob, InstallSnapshot

log = logging.getLogger(__name__)

PACKAGE = __package__
"""The add-on's module name: ``blender_addon`` from the repository, ``bl_ext.<repo>.video2anim`` installed."""
DEVICES = [
    ("auto", "Automatic", "CUDA when the backend sees a GPU, else the CPU"),
    ("cpu", "CPU", "Always the CPU"),
    ("cuda", "CUDA", "An NVIDIA GPU (needs a CUDA build of PyTorch)"),
]
BODIES = [
    ("anny", "Anny", "Open body model (Apache-2.0 code, CC0 assets); no files needed"),
    ("smpl", "SMPL", "Your own SMPL model files (smpl.is.tue.mpg.de)"),
    ("smplh", "SMPL-H", "Your own SMPL+H model files, with hands (mano.is.tue.mpg.de)"),
    ("smplx", "SMPL-X", "Your own SMPL-X model files, with hands and face (smpl-x.is.tue.mpg.de)"),
]
GENDERS = [(g, g.capitalize(), f"The {g} model file") for g in ("neutral", "male", "female")]
_LOG_LINES = 12


@dataclass(frozen=True)
class BackendPaths:
    """Where to run the backend, or why it cannot run."""

    python: Path | None
    root: Path | None
    problem: str = ""


def get(context: bpy.types.Context | None = None) -> Video2AnimPreferences | None:
    """This add-on's preferences, or None when it is not enabled as an add-on (e.g. bare scripts)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE)
    return None if addon is None else addon.preferences


def user_venv() -> Path | None:
    """The venv the Install button creates: the extension's user folder, or the repository's .venv."""
    try:
        return Path(bpy.utils.extension_path_user(PACKAGE, path="backend_venv", create=False))
    except ValueError:  # not installed as an extension: running from the repository
        root = backend_env.backend_root()
        return None if root is None else root / ".venv"


def backend_paths(
    prefs: Video2AnimPreferences | None, python: str = "", root: Path | None = None
) -> BackendPaths:
    """The backend's Python and source folder from explicit values, the preferences, or a search."""
    if root is None and prefs is not None and prefs.backend_source:
        root = Path(bpy.path.abspath(prefs.backend_source))
        if not (root / "backend" / "__main__.py").is_file():
            return BackendPaths(None, None, f"{root} holds no backend package (backend/__main__.py).")
    root = root or backend_env.backend_root()
    if root is None:
        return BackendPaths(None, None, "The backend's source is missing from the add-on: reinstall it.")
    configured = python or (prefs.python_path if prefs is not None else "")
    found = backend_env.find_python(bpy.path.abspath(configured) if configured else "", root, user_venv())
    if found is None:
        if configured:
            return BackendPaths(None, root, f"The backend Python {configured} does not exist.")
        return BackendPaths(
            None, root, "No backend Python found: press 'Install Backend' in the add-on preferences."
        )
    return BackendPaths(found, root)


class VIDEO2ANIM_OT_install_backend(bpy.types.Operator):
    """Create a Python environment for the backend and install its dependencies (needs internet)"""

    bl_idname = "video2anim.install_backend"
    bl_label = "Install Backend"
    bl_options = {"REGISTER", "INTERNAL"}

    def _start(self, context: bpy.types.Context) -> InstallJob | None:
        prefs = get(context)
        root = backend_env.backend_root()
        base = backend_env.base_python()
        venv = user_venv()
        if prefs is None or root is None or base is None or venv is None:
            self.report(
                {"ERROR"}, "Cannot install: the add-on, its backend source or a Python 3.11 is missing."
            )
            return None
        try:
            steps = backend_env.install_steps(base, venv, root)
        except (OSError, KeyError, ValueError) as exc:
            self.report({"ERROR"}, f"Cannot read the backend's dependencies: {exc}")
            return None
        job = InstallJob(steps, venv / "install_backend.log", _LOG_LINES)
        _show(prefs, job.start())
        return job

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Blocking install (scripts, background mode)."""
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        snap = job.poll()
        while not snap.finished:
            time.sleep(0.2)
            snap = job.poll()
        return self._done(context, snap)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if context.window is None:
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        self._timer = context.window_manager.event_timer_add(0.3, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type != "TIMER":  # any timer tick will do: polling is cheap
            return {"PASS_THROUGH"}
        snap = self._job.poll()
        prefs = get(context)
        if prefs is not None:
            _show(prefs, snap)
        for window in context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "PREFERENCES":
                    area.tag_redraw()
        if not snap.finished:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        return self._done(context, snap)

    def cancel(self, context: bpy.types.Context) -> None:
        self._job.cancel()
        context.window_manager.event_timer_remove(self._timer)

    def _done(self, context: bpy.types.Context, snap: InstallSnapshot) -> set[str]:
        prefs = get(context)
        if prefs is not None:
            _show(prefs, snap)
        if snap.status == "done":
            self.report({"INFO"}, "The backend is installed.")
            return {"FINISHED"}
        self.report({"ERROR"}, f"Installing the backend failed: {snap.error}")
        return {"CANCELLED"}


def _show(prefs: Video2AnimPreferences, snap: InstallSnapshot) -> None:
    step = f" {snap.step_index}/{snap.step_count}: {snap.step}" if snap.step else ""
    prefs.install_status = f"{snap.status}{step}{' - ' + snap.error if snap.error else ''}"
    prefs.install_log = "\n".join(snap.tail)


class Video2AnimPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    python_path: bpy.props.StringProperty(
        name="Backend Python",
        description="Python of the backend's environment; empty finds it (the repository's .venv, or the "
        "environment that 'Install Backend' creates)",
        subtype="FILE_PATH",
    )
    backend_source: bpy.props.StringProperty(
        name="Backend Source",
        description="Folder holding the backend package, for development; empty uses the bundled one",
        subtype="DIR_PATH",
    )
    body_model: bpy.props.EnumProperty(name="Body Model", items=BODIES, default="anny")
    smpl_folder: bpy.props.StringProperty(
        name="SMPL Files",
        description="Folder of your own SMPL / SMPL-H / SMPL-X model files (.npz or .pkl)",
        subtype="DIR_PATH",
    )
    smpl_gender: bpy.props.EnumProperty(name="Gender", items=GENDERS, default="neutral")
    vposer_path: bpy.props.StringProperty(
        name="VPoser Checkpoint",
        description="Optional official VPoser checkpoint to use as the pose prior instead of the bundled one",
        subtype="FILE_PATH",
    )
    device: bpy.props.EnumProperty(name="Device", items=DEVICES, default="auto")
    install_status: bpy.props.StringProperty(name="Install Status")
    install_log: bpy.props.StringProperty(name="Install Output")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        col = layout.column()
        col.prop(self, "python_path")
        paths = backend_paths(self)
        row = col.row()
        if paths.python is not None:
            row.label(text=f"Using {paths.python}", icon="CHECKMARK")
        else:
            row.label(text=paths.problem, icon="ERROR")
        col.prop(self, "backend_source")
        row = col.row()
        row.operator(VIDEO2ANIM_OT_install_backend.bl_idname, icon="IMPORT")
        if self.install_status:
            box = col.box()
            box.label(text=self.install_status)
            for line in self.install_log.splitlines():
                box.label(text=line[:200])
        col.separator()
        col.prop(self, "body_model")
        sub = col.column()
        sub.active = self.body_model != "anny"
        sub.prop(self, "smpl_folder")
        sub.prop(self, "smpl_gender")
        col.prop(self, "vposer_path")
        col.prop(self, "device")


CLASSES = (VIDEO2ANIM_OT_install_backend, Video2AnimPreferences)
register, unregister = bpy.utils.register_classes_factory(CLASSES)
