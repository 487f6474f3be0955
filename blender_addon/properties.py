"""The add-on's settings and job status: one PropertyGroup on ``bpy.types.Scene.video2anim``.

The estimate operator writes the status fields (``show``); the panel only draws them.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from . import protocol
from .job import JobSnapshot
from .job_options import JobOptions

STATUS = [
    ("IDLE", "Idle", ""),
    ("RUNNING", "Running", ""),
    ("CANCELLING", "Cancelling", ""),
    ("DONE", "Done", ""),
    ("FAILED", "Failed", ""),
    ("CANCELLED", "Cancelled", ""),
]
_PRESET_TEXT = {
    "fast": ("Fast", "Body only (no hands, face or silhouette); fewer fitting iterations"),
    "balanced": ("Balanced", "The default"),
    "accurate": ("Accurate", "More fitting iterations and the mesh self-collision term; slowest"),
}
PRESETS = [(name, *_PRESET_TEXT[name]) for name in protocol.PRESETS]
PERSON = [
    ("auto", "Most Prominent", "The most prominent person over the clip"),
    ("all", "Everyone", "Fit every person found (one armature each)"),
    ("id", "Track ID", "The person with this track id (printed in the warnings)"),
]
FBX_PRESETS = [("unity", "Unity", "Y up, scale applied"), ("unreal", "Unreal", "Z up, centimetres")]
MOVIE_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class Video2AnimSettings(bpy.types.PropertyGroup):
    source: bpy.props.EnumProperty(
        name="Source",
        items=[("CLIP", "Movie Clip", "A movie clip loaded in this file"), ("FILE", "File", "A video file")],
        default="CLIP",
    )
    clip: bpy.props.PointerProperty(name="Clip", type=bpy.types.MovieClip)
    filepath: bpy.props.StringProperty(name="Video", subtype="FILE_PATH")
    use_range: bpy.props.BoolProperty(name="Frame Range", description="Only process part of the video")
    frame_start: bpy.props.IntProperty(
        name="Start", description="First video frame (1 = the first)", min=1, default=1
    )
    frame_end: bpy.props.IntProperty(
        name="End", description="Last video frame (inclusive)", min=1, default=250
    )
    preset: bpy.props.EnumProperty(name="Preset", items=PRESETS, default="balanced")
    person: bpy.props.EnumProperty(name="Person", items=PERSON, default="auto")
    person_id: bpy.props.IntProperty(name="Track ID", min=0)
    hands: bpy.props.BoolProperty(name="Hands", description="Estimate the fingers", default=True)
    face: bpy.props.BoolProperty(name="Face", description="Estimate the face", default=True)
    preview: bpy.props.BoolProperty(name="Preview Video", description="Also write an MP4 preview of the fit")
    output_dir: bpy.props.StringProperty(
        name="Output",
        description="Folder for the motion file and the log ('//' = next to this .blend; next to the video "
        "while the .blend is unsaved)",
        subtype="DIR_PATH",
        default="//video2anim/",
    )
    ground_plane: bpy.props.BoolProperty(
        name="Ground Plane", description="Add a plane at z = 0 under the imported subject", default=True
    )
    fbx_preset: bpy.props.EnumProperty(name="FBX Preset", items=FBX_PRESETS, default="unity")

    # Job status: written by video2anim.estimate, drawn by the panel.
    status: bpy.props.EnumProperty(name="Status", items=STATUS, default="IDLE")
    stage: bpy.props.StringProperty(name="Stage")
    progress: bpy.props.FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    message: bpy.props.StringProperty(name="Message")
    warning_count: bpy.props.IntProperty(name="Warnings")
    last_warning: bpy.props.StringProperty(name="Last Warning")
    log_path: bpy.props.StringProperty(name="Log", subtype="FILE_PATH")
    motion_path: bpy.props.StringProperty(name="Motion File", subtype="FILE_PATH")
    cancel_requested: bpy.props.BoolProperty(name="Cancel Requested")

    @property
    def running(self) -> bool:
        return self.status in ("RUNNING", "CANCELLING")

    def show(self, snap: JobSnapshot) -> None:
        """Copy a job snapshot into the status fields."""
        self.status = {"starting": "RUNNING"}.get(snap.status, snap.status.upper())
        self.stage = snap.summary()
        self.progress = snap.percent / 100.0
        self.message = snap.error
        self.warning_count = len(snap.warnings)
        self.last_warning = snap.warnings[-1] if snap.warnings else ""
        self.log_path = str(snap.log_path or "")
        if snap.result is not None:
            self.motion_path = str(snap.result)

    def video(self) -> tuple[Path | None, str]:
        """The video file and the clip's name, or (None, why not)."""
        if self.source == "CLIP":
            clip = self.clip
            if clip is None:
                return None, "Choose a movie clip (or switch the source to File)."
            if clip.source != "MOVIE":
                return None, f"{clip.name} is an image sequence: choose a movie file."
            path = Path(bpy.path.abspath(clip.filepath, library=clip.library))
            name = clip.name
        else:
            if not self.filepath:
                return None, "Choose a video file."
            path = Path(bpy.path.abspath(self.filepath))
            name = path.stem
        if not path.is_file():
            return None, f"The video {path} does not exist."
        return path, bpy.path.clean_name(Path(name).stem)

    def job_options(
        self, device: str, vposer: str = "", body: str = "anny", model_path: str = "", gender: str = "neutral"
    ) -> tuple[JobOptions | None, str]:
        """The backend options for these settings and the add-on preferences' device, prior and body
        model (``model_path``: the SMPL-family files' folder), or (None, what to fix)."""
        video, name = self.video()
        if video is None:
            return None, name
        out_dir = self.output_dir or "//video2anim/"
        if out_dir.startswith("//") and not bpy.data.is_saved:
            folder = video.parent / "video2anim"
        else:
            folder = Path(bpy.path.abspath(out_dir))
        options = JobOptions(
            video=video,
            out=folder / f"{name}.motion.npz",
            preset=self.preset,
            person=str(self.person_id) if self.person == "id" else self.person,
            start=self.frame_start - 1 if self.use_range else 0,
            end=self.frame_end if self.use_range else None,
            device=device,
            preview=folder / f"{name}_preview.mp4" if self.preview else None,
            vposer=Path(bpy.path.abspath(vposer)) if vposer else None,
            hands=self.hands,
            face=self.face,
            body=body,
            model_path=Path(bpy.path.abspath(model_path)) if model_path else None,
            gender=gender,
        )
        problems = options.problems()
        return (None, " ".join(problems)) if problems else (options, "")


@bpy.app.handlers.persistent
def reset_stale_status(*_args: object) -> None:
    """A file saved while an estimate ran cannot resume it: show such scenes as idle again."""
    for scene in bpy.data.scenes:
        settings = getattr(scene, "video2anim", None)
        if settings is not None and settings.running:
            settings.status, settings.stage, settings.cancel_requested = "IDLE", "", False


def register() -> None:
    bpy.utils.register_class(Video2AnimSettings)
    bpy.types.Scene.video2anim = bpy.props.PointerProperty(type=Video2AnimSettings)
    bpy.app.handlers.load_post.append(reset_stale_status)


def unregister() -> None:
    if reset_stale_status in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(reset_stale_status)
    del bpy.types.Scene.video2anim
    bpy.utils.unregister_class(Video2AnimSettings)
