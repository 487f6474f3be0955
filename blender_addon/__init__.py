"""video2anim Blender add-on: estimate a body motion from a video and import it as an animated body.

Only this package imports ``bpy``; the estimation backend (PyTorch) runs as a separate process in
its own Python (see ``job.py``). The Blender modules are imported inside ``register()`` so that the
bpy-free ones (``job``, ``process``, ``backend_env``, ``motion_data``, ``rig_math``) import anywhere.

- ``preferences``: backend Python, body model, device; the *Install Backend* button.
- ``properties``: the settings and job status (``bpy.types.Scene.video2anim``).
- ``operators``: ``video2anim.estimate`` / ``cancel`` / ``import_motion`` / ``export_fbx`` / ``export_bvh``
  / ``lock_feet``; ``retarget_operator``: ``video2anim.retarget`` (onto the user's rig).
- ``panels``: the N-panel tab "Mocap".
- ``api``: the scripting API; ``batch``: a folder of clips to .blend + .fbx files.
- ``retarget`` (with ``retarget_maps``, ``retarget_math``, ``retarget_pose``): motion onto the user's rig.
"""

from __future__ import annotations

from types import ModuleType


def _modules() -> tuple[ModuleType, ...]:
    """The registering modules, in registration order."""
    from . import operators, panels, preferences, properties, retarget_operator

    return (preferences, properties, operators, retarget_operator, panels)


def register() -> None:
    for module in _modules():
        module.register()


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()
