"""The retarget operator: bake the active imported body's motion onto the rig picked in the panel.

Runs a few frames per timer tick (``retarget.retarget_steps``) so Blender stays responsive; Esc cancels
and puts the rig back as it was. Run from a script or in background mode it blocks until done.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import bpy

from . import retarget
from .operators import active_armature


class VIDEO2ANIM_OT_retarget(bpy.types.Operator):
    """Bake the active imported body's motion onto your rig (panel: Your Rig, Bone Map); Esc cancels"""

    bl_idname = "video2anim.retarget"
    bl_label = "Retarget to Rig"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        armature = active_armature(context)
        return armature is not None and bool(armature.get("video2anim_source"))

    def _steps(self, context: bpy.types.Context) -> Generator[float, None, retarget.RetargetResult] | None:
        settings = context.scene.video2anim
        source, target = active_armature(context), settings.retarget_target
        bone_map = settings.bone_map_file if settings.bone_map == "json" else settings.bone_map
        if target is None or source is None:
            self.report({"ERROR"}, "Pick Your Rig in the panel and select the imported body.")
            return None
        if settings.bone_map == "json" and not bone_map:
            self.report({"ERROR"}, "Choose the bone map's JSON file.")
            return None
        steps = retarget.retarget_steps(source, target, bpy.path.abspath(bone_map) if bone_map.endswith(".json") else bone_map)
        try:
            next(steps)  # checks the rigs and the map before anything changes
        except (ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, f"Retarget failed: {exc}")
            return None
        return steps

    def _done(self, result: retarget.RetargetResult) -> set[str]:
        self.report({"INFO"}, f"Retargeted {len(result.slots)} bones over frames {result.frames[0]}-{result.frames[1]}"
                              f" (motion scale {result.scale:.2f}) as action {result.action}")  # fmt: skip
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Blocking run (scripts and background mode)."""
        steps = self._steps(context)
        if steps is None:
            return {"CANCELLED"}
        try:
            while True:
                next(steps)
        except StopIteration as done:
            return self._done(done.value)
        except (ValueError, RuntimeError) as exc:
            self.report({"ERROR"}, f"Retarget failed: {exc} (your rig is unchanged)")
            return {"CANCELLED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if context.window is None:
            return self.execute(context)
        self._run = self._steps(context)
        if self._run is None:
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(0.01, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._end(context)
            self._run.close()  # the rig is put back as it was
            self.report({"WARNING"}, "Retarget cancelled; your rig is unchanged")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        start = time.monotonic()
        try:
            while time.monotonic() - start < 0.1:  # a few frames per tick: Blender stays responsive
                share = next(self._run)
        except StopIteration as done:
            self._end(context)
            return self._done(done.value)
        except (ValueError, RuntimeError) as exc:
            self._end(context)
            self.report({"ERROR"}, f"Retarget failed: {exc} (your rig is unchanged)")
            return {"CANCELLED"}
        if context.workspace is not None:
            context.workspace.status_text_set(f"Video2Anim: retargeting {100 * share:.0f}% (Esc cancels)")
        return {"RUNNING_MODAL"}

    def _end(self, context: bpy.types.Context) -> None:
        context.window_manager.event_timer_remove(self._timer)
        if context.workspace is not None:
            context.workspace.status_text_set(None)


CLASSES = (VIDEO2ANIM_OT_retarget,)
register, unregister = bpy.utils.register_classes_factory(CLASSES)
