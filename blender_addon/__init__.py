"""video2anim Blender add-on: estimate a body motion from a video and import it as an animated body.

Only this package imports ``bpy``; the estimation backend (PyTorch) runs as a separate process in
its own Python (see ``job.py``). The Blender modules are imported inside ``register()`` so that the
bpy-free ones (``job``, ``process``, ``backend_env``, ``motion_data``, ``rig_math``) import anywhere.

- ``preferences``: backend Python, body model, device; the *Install Backend* button.
- ``properties``: the settings and job status (``bpy.types.Scene.video2anim``).
- ``operators``: ``video2anim.estimate`` / ``cancel`` / ``import_motion`` / ``export_fbx``.
- ``panels``: the N-panel tab "Mocap".
- ``api``: the scripting API; ``batch``: a folder of clips to .blend + .fbx files.
"""

from __future__ import annotations

from types import ModuleType


def _modules() -> tuple[ModuleType, ...]:
    """The registering modules, in registration order."""
    from . import operators, panels, preferences, properties

    return (preferences, properties, operators, panels)


def register() -> None:
    for module in _modules():
        module.register()


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()
