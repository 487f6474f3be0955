"""The 3D view's N-panel tab "Mocap" (draw only: every change goes through properties or operators)."""

from __future__ import annotations

import bpy

from . import preferences
from .operators import (
    VIDEO2ANIM_OT_cancel,
    VIDEO2ANIM_OT_estimate,
    VIDEO2ANIM_OT_export_bvh,
    VIDEO2ANIM_OT_export_fbx,
    VIDEO2ANIM_OT_find_people,
    VIDEO2ANIM_OT_import_motion,
    VIDEO2ANIM_OT_lock_feet,
)
from .properties import Video2AnimSettings
from .retarget_operator import VIDEO2ANIM_OT_retarget


class VIDEO2ANIM_PT_estimate(bpy.types.Panel):
    bl_idname = "VIDEO2ANIM_PT_estimate"
    bl_label = "Estimate Pose from Video"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Mocap"

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.video2anim
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

        col = layout.column()
        col.enabled = not settings.running
        col.prop(settings, "source", expand=True)
        col.prop(settings, "clip" if settings.source == "CLIP" else "filepath")
        col.prop(settings, "use_range")
        sub = col.column(align=True)
        sub.active = settings.use_range
        sub.prop(settings, "frame_start")
        sub.prop(settings, "frame_end")
        col.prop(settings, "preset")
        row = col.row(align=True)
        row.prop(settings, "person")
        row.operator(VIDEO2ANIM_OT_find_people.bl_idname, text="", icon="COMMUNITY")
        if settings.person == "id":
            col.prop(settings, "person_id")
        if settings.people and settings.person in ("chosen", "all"):
            _draw_people(col, settings)
        row = col.row(heading="Include")
        row.prop(settings, "hands", toggle=True)
        row.prop(settings, "face", toggle=True)
        col.prop(settings, "preview")
        col.prop(settings, "ground_plane")
        col.prop(settings, "output_dir")
        prefs = preferences.get(context)
        body = dict((key, name) for key, name, _ in preferences.BODIES)[prefs.body_model if prefs else "anny"]
        col.label(text=f"Body model: {body} (add-on preferences)", icon="ARMATURE_DATA")

        _draw_status(layout, settings)
        layout.separator()
        col = layout.column()
        op = col.operator(VIDEO2ANIM_OT_import_motion.bl_idname, icon="IMPORT")
        op.ground_plane = settings.ground_plane
        col.operator(VIDEO2ANIM_OT_lock_feet.bl_idname, icon="CON_KINEMATIC")
        row = col.row(align=True)
        row.prop(settings, "fbx_preset", text="")
        op = row.operator(VIDEO2ANIM_OT_export_fbx.bl_idname, icon="EXPORT")
        op.preset = settings.fbx_preset
        col.operator(VIDEO2ANIM_OT_export_bvh.bl_idname, icon="EXPORT")
        layout.separator()
        col = layout.column()
        col.use_property_split = True
        col.prop(settings, "retarget_target")
        col.prop(settings, "bone_map")
        if settings.bone_map == "json":
            col.prop(settings, "bone_map_file")
        col.operator(VIDEO2ANIM_OT_retarget.bl_idname, icon="ARMATURE_DATA")


def _draw_people(layout: bpy.types.UILayout, settings: Video2AnimSettings) -> None:
    """The people Find People listed: thumbnail, tick, id, when seen and how big."""
    box = layout.box()
    if settings.people_of != settings.people_key():
        box.label(text="Made for another video or range: Find People again", icon="ERROR")
    for person in settings.people:
        row = box.row()
        if person.image is not None and person.image.preview is not None:
            row.template_icon(icon_value=person.image.preview.icon_id, scale=3.0)
        col = row.column()
        col.prop(person, "use", text=f"Person {person.person_id}")
        col.label(text=f"frames {person.frames}")
        col.label(text=f"{person.box_px:.0f} px tall")


def _draw_status(layout: bpy.types.UILayout, settings: Video2AnimSettings) -> None:
    if settings.running:
        layout.progress(factor=settings.progress, type="BAR", text=settings.stage)
        layout.operator(VIDEO2ANIM_OT_cancel.bl_idname, icon="CANCEL")
    else:
        layout.operator(VIDEO2ANIM_OT_estimate.bl_idname, icon="PLAY")
    box = None
    if settings.status == "FAILED" and settings.message:
        box = layout.box()
        box.label(text="Failed", icon="ERROR")
        for chunk in _wrap(settings.message, 60)[:6]:
            box.label(text=chunk)
    elif settings.status in ("DONE", "CANCELLED"):
        layout.label(text=settings.stage, icon="CHECKMARK" if settings.status == "DONE" else "CANCEL")
    if settings.warning_count:
        box = box or layout.box()
        box.label(text=f"{settings.warning_count} warning(s): {settings.last_warning}", icon="INFO")
    if settings.log_path and settings.status != "IDLE":
        layout.label(text=f"Log: {settings.log_path}", icon="TEXT")


def _wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


CLASSES = (VIDEO2ANIM_PT_estimate,)
register, unregister = bpy.utils.register_classes_factory(CLASSES)
